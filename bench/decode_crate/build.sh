#!/usr/bin/env bash
# Builds bench/decode_crate/target/jpeg_decoder_glue.wasm: Debian's jpeg-decoder 0.2.6
# (apt-get install librust-jpeg-decoder-dev) with the same toolchain and flags as
# wasm/decode/build.sh, offline from /usr/share/cargo/registry. Not committed (target/).
set -euo pipefail
dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export PATH=/usr/bin:/bin RUSTC=/usr/bin/rustc CARGO_TARGET_DIR="$dir/target"
export CARGO_ENCODED_RUSTFLAGS="-C$(printf '\x1f')target-feature=+simd128,+nontrapping-fptoint"
unset RUSTFLAGS
[ -d /usr/share/cargo/registry/jpeg-decoder-0.2.6 ] ||
  { echo "apt-get install -y librust-jpeg-decoder-dev" >&2; exit 1; }
cd "$dir"
/usr/bin/cargo build --target wasm32-unknown-unknown --release --offline
/usr/bin/wasm-opt -O3 --enable-simd --enable-nontrapping-float-to-int --strip-debug \
  "$dir/target/wasm32-unknown-unknown/release/jpeg_decoder_glue.wasm" -o "$dir/target/jpeg_decoder_glue.wasm"
echo "$dir/target/jpeg_decoder_glue.wasm ($(wc -c <"$dir/target/jpeg_decoder_glue.wasm") bytes)" >&2
