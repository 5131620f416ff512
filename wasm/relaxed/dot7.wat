;; The dot block of the 7-bit convs (wasm/src/qconv7.rs) on relaxed SIMD, written by
;; hand: Debian's rustc 1.63 has no relaxed intrinsics. Assembled by wasm/build.sh
;; (wat2wasm --enable-relaxed-simd; wabt 1.0.32 knows the instruction by the proposal's
;; older name i32x4.dot_i8x16_i7x16_add_s).
;;
;; dot7(w, a, kp, pairs, out): four rows of w: [KP / 16, 4, 16] u8 (values 0..127)
;; against the pixels a: [2 * pairs, KP] i8, two pixels per pass (each weight load
;; serves both; 8 accumulators). out: [2 * pairs] i32x4, pixel p's four row sums. With
;; the second operand in 0..127 every engine gives the same exact sums. Many pixels per
;; call: one call per pixel pair cost conv1 (K 363) a quarter more time. It works on the
;; kernels module's memory, imported as env.memory; KP >= 16, a multiple of 16; pairs >= 1.
(module
  (import "env" "memory" (memory 1))
  (func (export "dot7") (param $w i32) (param $a i32) (param $kp i32) (param $pairs i32)
    (param $out i32)
    (local $wp i32) (local $x0 i32) (local $x1 i32) (local $end i32)
    (local $xa v128) (local $xb v128) (local $v v128)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local $b0 v128) (local $b1 v128) (local $b2 v128) (local $b3 v128)
    (local.set $end (i32.add (local.get $w) (i32.shl (local.get $kp) (i32.const 2))))
    (loop $pair
      (local.set $wp (local.get $w))
      (local.set $x0 (local.get $a))
      (local.set $x1 (i32.add (local.get $a) (local.get $kp)))
      (local.set $a0 (v128.const i32x4 0 0 0 0))
      (local.set $a1 (v128.const i32x4 0 0 0 0))
      (local.set $a2 (v128.const i32x4 0 0 0 0))
      (local.set $a3 (v128.const i32x4 0 0 0 0))
      (local.set $b0 (v128.const i32x4 0 0 0 0))
      (local.set $b1 (v128.const i32x4 0 0 0 0))
      (local.set $b2 (v128.const i32x4 0 0 0 0))
      (local.set $b3 (v128.const i32x4 0 0 0 0))
      (loop $chunk
        (local.set $xa (v128.load (local.get $x0)))
        (local.set $xb (v128.load (local.get $x1)))
        (local.set $v (v128.load offset=0 (local.get $wp)))
        (local.set $a0 (i32x4.dot_i8x16_i7x16_add_s (local.get $xa) (local.get $v) (local.get $a0)))
        (local.set $b0 (i32x4.dot_i8x16_i7x16_add_s (local.get $xb) (local.get $v) (local.get $b0)))
        (local.set $v (v128.load offset=16 (local.get $wp)))
        (local.set $a1 (i32x4.dot_i8x16_i7x16_add_s (local.get $xa) (local.get $v) (local.get $a1)))
        (local.set $b1 (i32x4.dot_i8x16_i7x16_add_s (local.get $xb) (local.get $v) (local.get $b1)))
        (local.set $v (v128.load offset=32 (local.get $wp)))
        (local.set $a2 (i32x4.dot_i8x16_i7x16_add_s (local.get $xa) (local.get $v) (local.get $a2)))
        (local.set $b2 (i32x4.dot_i8x16_i7x16_add_s (local.get $xb) (local.get $v) (local.get $b2)))
        (local.set $v (v128.load offset=48 (local.get $wp)))
        (local.set $a3 (i32x4.dot_i8x16_i7x16_add_s (local.get $xa) (local.get $v) (local.get $a3)))
        (local.set $b3 (i32x4.dot_i8x16_i7x16_add_s (local.get $xb) (local.get $v) (local.get $b3)))
        (local.set $wp (i32.add (local.get $wp) (i32.const 64)))
        (local.set $x0 (i32.add (local.get $x0) (i32.const 16)))
        (local.set $x1 (i32.add (local.get $x1) (i32.const 16)))
        (br_if $chunk (i32.lt_u (local.get $wp) (local.get $end))))
      (v128.store offset=0 (local.get $out)
        (call $reduce4 (local.get $a0) (local.get $a1) (local.get $a2) (local.get $a3)))
      (v128.store offset=16 (local.get $out)
        (call $reduce4 (local.get $b0) (local.get $b1) (local.get $b2) (local.get $b3)))
      (local.set $out (i32.add (local.get $out) (i32.const 32)))
      (local.set $a (i32.add (local.get $a) (i32.shl (local.get $kp) (i32.const 1))))
      (br_if $pair (local.tee $pairs (i32.sub (local.get $pairs) (i32.const 1))))))

  ;; [sum of r0's lanes, sum of r1's, sum of r2's, sum of r3's] (qgemm.rs's reduce4).
  (func $reduce4 (param $r0 v128) (param $r1 v128) (param $r2 v128) (param $r3 v128)
    (result v128)
    (local $s01 v128) (local $s23 v128)
    (local.set $s01 (i32x4.add
      (i8x16.shuffle 0 1 2 3 16 17 18 19 8 9 10 11 24 25 26 27 (local.get $r0) (local.get $r1))
      (i8x16.shuffle 4 5 6 7 20 21 22 23 12 13 14 15 28 29 30 31 (local.get $r0) (local.get $r1))))
    (local.set $s23 (i32x4.add
      (i8x16.shuffle 0 1 2 3 16 17 18 19 8 9 10 11 24 25 26 27 (local.get $r2) (local.get $r3))
      (i8x16.shuffle 4 5 6 7 20 21 22 23 12 13 14 15 28 29 30 31 (local.get $r2) (local.get $r3))))
    (i32x4.add
      (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $s01) (local.get $s23))
      (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $s01) (local.get $s23)))))
