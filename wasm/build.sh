#!/usr/bin/env bash
# Builds wasm/alexnet_kernels.wasm (and its .sha256) from this crate. The one way to
# build it: the toolchain and every flag are written down here, and the output is
# byte-reproducible for the toolchain below whatever the checkout path.
#
#   bash wasm/build.sh             # writes wasm/alexnet_kernels.wasm{,.sha256}
#   bash wasm/build.sh OUT_DIR     # writes them to OUT_DIR instead (the rebuild test)
#
# Toolchain (Debian bookworm packages; rustup toolchains give other bytes):
#   apt-get install -y rustc cargo libstd-rust-dev-wasm32 lld binaryen wabt
#   rustc 1.63.0, cargo 1.65.0, rust-lld -> lld 14, wasm-opt version 108 (binaryen),
#   wat2wasm 1.0.32 (wabt) for wasm/relaxed/dot7.wat -> relaxed/dot7.wasm{,.sha256}
# Env overrides: CARGO_TARGET_DIR (default wasm/target), RUSTC, CARGO, WASM_OPT, WAT2WASM.
set -euo pipefail

crate_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out_dir="${1:-$crate_dir}"
expected_rustc="rustc 1.63.0"
expected_wasm_opt="wasm-opt version 108"

# Only the Debian toolchain: a rustup proxy earlier in PATH would pick another rustc.
export PATH=/usr/bin:/bin
rustc="${RUSTC:-/usr/bin/rustc}"
cargo="${CARGO:-/usr/bin/cargo}"
wasm_opt="${WASM_OPT:-/usr/bin/wasm-opt}"
wat2wasm="${WAT2WASM:-/usr/bin/wat2wasm}"

die() {
  echo "wasm/build.sh: $*" >&2
  exit 1
}
for tool in "$rustc" "$cargo" "$wasm_opt" "$wat2wasm" sha256sum; do
  command -v "$tool" >/dev/null ||
    die "cannot find $tool: apt-get install -y rustc cargo libstd-rust-dev-wasm32 lld binaryen wabt"
done
sysroot="$("$rustc" --print sysroot)"
[ -d "$sysroot/lib/rustlib/wasm32-unknown-unknown" ] ||
  die "rustc has no wasm32-unknown-unknown std: apt-get install -y libstd-rust-dev-wasm32"
# rustc links wasm with `rust-lld`, which Debian points at lld-14.
command -v rust-lld >/dev/null || die "cannot find rust-lld (the wasm linker): apt-get install -y lld"

# A different toolchain still builds, but not the committed bytes: say so up front.
found_rustc="$("$rustc" --version)"
found_wasm_opt="$("$wasm_opt" --version)"
if [[ "$found_rustc" != "$expected_rustc"* || "$found_wasm_opt" != "$expected_wasm_opt"* ]]; then
  echo "wasm/build.sh: warning: pinned $expected_rustc and $expected_wasm_opt," \
    "found $found_rustc and $found_wasm_opt; the sha256 will differ from the committed one" >&2
fi

target_dir="${CARGO_TARGET_DIR:-$crate_dir/target}"
mkdir -p "$target_dir" "$out_dir"
target_dir="$(cd "$target_dir" && pwd)"

# simd128: the kernels are written for it (lib.rs refuses to build without).
# stack-size: the kernels need ~3 KiB of stack; 64 KiB instead of Rust's 1 MiB
#   default keeps the initial memory at 2 pages instead of 17.
# export-table, growable-table: JavaScript appends wasm/relaxed's dot7 to the function
#   table and hands its slot to `use_dot7` (qconv7.rs): the 7-bit convs call it with
#   call_indirect, the relaxed module working on this module's exported memory.
# remap-path-prefix: paths end up in the binary only through panic locations, but
#   map them anyway so the bytes never depend on where the checkout lives.
# The flags go in CARGO_ENCODED_RUSTFLAGS (separated by 0x1f) so a checkout path
# with spaces stays one argument; it overrides RUSTFLAGS and cargo config.
flags=(
  -C target-feature=+simd128
  -C link-arg=-zstack-size=65536
  -C link-arg=--export-table
  -C link-arg=--growable-table
  "--remap-path-prefix=$crate_dir=/alexnet_kernels"
  "--remap-path-prefix=$target_dir=/target"
)
export RUSTC="$rustc"
export CARGO_TARGET_DIR="$target_dir"
CARGO_ENCODED_RUSTFLAGS="$(IFS=$'\x1f' && echo "${flags[*]}")"
export CARGO_ENCODED_RUSTFLAGS
unset RUSTFLAGS CARGO_BUILD_RUSTFLAGS RUSTC_WRAPPER RUSTC_WORKSPACE_WRAPPER
export SOURCE_DATE_EPOCH=0

"$cargo" build --manifest-path "$crate_dir/Cargo.toml" --target wasm32-unknown-unknown \
  --release --locked --offline

# wasm-opt -O3 shrinks the module by about a quarter (no speed change measured in
# V8); its passes are deterministic for a given input and version, and
# --strip-producers drops the toolchain-name section.
raw="$target_dir/wasm32-unknown-unknown/release/alexnet_kernels.wasm"
"$wasm_opt" -O3 --enable-simd --strip-debug --strip-producers "$raw" -o "$out_dir/alexnet_kernels.wasm"

(cd "$out_dir" && sha256sum alexnet_kernels.wasm >alexnet_kernels.wasm.sha256)
echo "wasm/build.sh: wrote $out_dir/alexnet_kernels.wasm ($(wc -c <"$out_dir/alexnet_kernels.wasm") bytes)" >&2
cat "$out_dir/alexnet_kernels.wasm.sha256" >&2

# The relaxed-SIMD dot block of the 7-bit convs (qconv7.rs), hand-written: rustc 1.63
# has no relaxed intrinsics. wat2wasm's output depends only on the text and its version.
mkdir -p "$out_dir/relaxed"
"$wat2wasm" --enable-relaxed-simd "$crate_dir/relaxed/dot7.wat" -o "$out_dir/relaxed/dot7.wasm"
(cd "$out_dir" && sha256sum relaxed/dot7.wasm >relaxed/dot7.wasm.sha256)
cat "$out_dir/relaxed/dot7.wasm.sha256" >&2

# The server imports the module's bytes from a generated TypeScript module (bundlers carry
# imports, not files read at run time): refresh it when the committed module was rebuilt.
if [ "$out_dir" = "$crate_dir" ] && command -v deno >/dev/null; then
  deno run --allow-read --allow-write "$crate_dir/../deploy/embed_wasm.ts"
fi
