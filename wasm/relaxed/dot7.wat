;; The dot block of the 7-bit convs (wasm/src/qconv7.rs) on relaxed SIMD, written by
;; hand: Debian's rustc 1.63 has no relaxed intrinsics. Assembled by wasm/build.sh
;; (wat2wasm --enable-relaxed-simd; wabt 1.0.32 knows the instruction by the proposal's
;; older name i32x4.dot_i8x16_i7x16_add_s).
;;
;; dot7(w, x0, x1, kp, out): for rows r = 0..4 of w: [KP / 16, 4, 16] u8 (values 0..127)
;; and x0, x1: [KP] i8, out[r] = the i32x4 lanes of row r against x0, out[4 + r] against
;; x1 (8 v128; a row's sum is its four lanes' sum). With the second operand in 0..127
;; every engine gives the same exact sums. It works on the kernels module's memory,
;; imported as env.memory; KP >= 16 and a multiple of 16.
(module
  (import "env" "memory" (memory 1))
  (func (export "dot7") (param $w i32) (param $x0 i32) (param $x1 i32) (param $kp i32)
    (param $out i32)
    (local $end i32) (local $xa v128) (local $xb v128) (local $v v128)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local $b0 v128) (local $b1 v128) (local $b2 v128) (local $b3 v128)
    (local.set $end (i32.add (local.get $w) (i32.shl (local.get $kp) (i32.const 2))))
    (loop $chunk
      (local.set $xa (v128.load (local.get $x0)))
      (local.set $xb (v128.load (local.get $x1)))
      (local.set $v (v128.load offset=0 (local.get $w)))
      (local.set $a0 (i32x4.dot_i8x16_i7x16_add_s (local.get $xa) (local.get $v) (local.get $a0)))
      (local.set $b0 (i32x4.dot_i8x16_i7x16_add_s (local.get $xb) (local.get $v) (local.get $b0)))
      (local.set $v (v128.load offset=16 (local.get $w)))
      (local.set $a1 (i32x4.dot_i8x16_i7x16_add_s (local.get $xa) (local.get $v) (local.get $a1)))
      (local.set $b1 (i32x4.dot_i8x16_i7x16_add_s (local.get $xb) (local.get $v) (local.get $b1)))
      (local.set $v (v128.load offset=32 (local.get $w)))
      (local.set $a2 (i32x4.dot_i8x16_i7x16_add_s (local.get $xa) (local.get $v) (local.get $a2)))
      (local.set $b2 (i32x4.dot_i8x16_i7x16_add_s (local.get $xb) (local.get $v) (local.get $b2)))
      (local.set $v (v128.load offset=48 (local.get $w)))
      (local.set $a3 (i32x4.dot_i8x16_i7x16_add_s (local.get $xa) (local.get $v) (local.get $a3)))
      (local.set $b3 (i32x4.dot_i8x16_i7x16_add_s (local.get $xb) (local.get $v) (local.get $b3)))
      (local.set $w (i32.add (local.get $w) (i32.const 64)))
      (local.set $x0 (i32.add (local.get $x0) (i32.const 16)))
      (local.set $x1 (i32.add (local.get $x1) (i32.const 16)))
      (br_if $chunk (i32.lt_u (local.get $w) (local.get $end))))
    (v128.store offset=0 (local.get $out) (local.get $a0))
    (v128.store offset=16 (local.get $out) (local.get $a1))
    (v128.store offset=32 (local.get $out) (local.get $a2))
    (v128.store offset=48 (local.get $out) (local.get $a3))
    (v128.store offset=64 (local.get $out) (local.get $b0))
    (v128.store offset=80 (local.get $out) (local.get $b1))
    (v128.store offset=96 (local.get $out) (local.get $b2))
    (v128.store offset=112 (local.get $out) (local.get $b3))))
