//! `pow` for four f64 lanes, with its `ln` and `exp`, written here because no_std
//! has no libm and the crate takes no dependencies.
//!
//! Accuracy is sized for results rounded to f32 afterwards: `ln` and `exp` use
//! short Taylor series (coefficients 1/(2k+1) and 1/k!, easy to check) after the
//! classic range reductions, and stay within 4e-14 (ln) and 3e-13 (exp) relative
//! error (measured against 50-digit Decimal arithmetic on 1e5 random arguments when
//! this was written). pow = exp(p * ln |d|) adds about |p ln d| * 1.1e-16 from the
//! product: all far below the 3e-8 half-ulp of an f32 result.
//!
//! Speed: every constant comes from `Consts`, a table in memory built once per call,
//! instead of a `v128.const`: V8 materializes each v128.const with several
//! instructions on every use (it does not hoist them out of loops), and with ~40 of
//! them that doubled the cost of the general LRN path. The series use Estrin's
//! scheme, and each step works on four lanes (two f64x2) side by side in `F64x4`,
//! so two independent dependency chains are in flight.

use core::arch::wasm32::*;

/// ln 2 split so that k * LN2_HI is exact for |k| < 2^20 (fdlibm's split).
const LN2_HI: f64 = 6.931_471_803_691_238_164_9e-1; // 0x3fe62e42_fee00000
const LN2_LO: f64 = 1.908_214_929_270_587_7e-10; // 0x3dea39ef_35793c76
const INV_LN2: f64 = 1.442_695_040_888_963_4;

/// Four f64 lanes as two f64x2; every operation handles both halves together.
#[derive(Clone, Copy)]
pub struct F64x4(pub v128, pub v128);

impl From<v128> for F64x4 {
    /// The same two lanes twice (a constant for all four lanes).
    #[inline(always)]
    fn from(v: v128) -> F64x4 {
        F64x4(v, v)
    }
}

/// Every constant `ln` and `exp` use, as splatted v128s in memory (see the module
/// comment for why not v128.const).
struct Consts {
    zero: v128,
    half: v128,
    one: v128,
    sqrt2: v128,
    inf: v128,
    neg_inf: v128,
    all_ones: v128,
    mantissa_mask: v128,
    exponent_bias: v128,
    exponent_bias_i64: v128,
    ln2_hi: v128,
    ln2_lo: v128,
    inv_ln2: v128,
    exp_min: v128,
    exp_max: v128,
    ln_series: [v128; 7],
    exp_series: [v128; 11],
}

impl Consts {
    fn new() -> Consts {
        let f = f64x2_splat;
        Consts {
            zero: f(0.0),
            half: f(0.5),
            one: f(1.0),
            sqrt2: f(core::f64::consts::SQRT_2),
            inf: f(f64::INFINITY),
            neg_inf: f(f64::NEG_INFINITY),
            all_ones: u64x2_splat(u64::MAX),
            mantissa_mask: u64x2_splat(0x000f_ffff_ffff_ffff),
            exponent_bias: f(1023.0),
            exponent_bias_i64: i64x2_splat(1023),
            ln2_hi: f(LN2_HI),
            ln2_lo: f(LN2_LO),
            inv_ln2: f(INV_LN2),
            exp_min: f(-746.0),
            exp_max: f(710.0),
            // 1/3, 1/5, ..., 1/15
            ln_series: [3.0, 5.0, 7.0, 9.0, 11.0, 13.0, 15.0].map(|k| f(1.0 / k)),
            // 1/0!, 1/1!, ..., 1/10!
            exp_series: [
                1.0,
                1.0,
                2.0,
                6.0,
                24.0,
                120.0,
                720.0,
                5040.0,
                40320.0,
                362_880.0,
                3_628_800.0,
            ]
            .map(|n| f(1.0 / n)),
        }
    }
}

macro_rules! lanewise {
    ($($name:ident => $op:ident),* $(,)?) => {
        impl F64x4 {
            $(
                #[inline(always)]
                fn $name(self, b: F64x4) -> F64x4 {
                    F64x4($op(self.0, b.0), $op(self.1, b.1))
                }
            )*
        }
    };
}

lanewise! {
    add => f64x2_add, sub => f64x2_sub, mul => f64x2_mul, div => f64x2_div,
    lt => f64x2_lt, gt => f64x2_gt, eq => f64x2_eq,
    pmin => f64x2_pmin, pmax => f64x2_pmax, and => v128_and, or => v128_or, xor => v128_xor,
}

impl F64x4 {
    /// Lanes of `a` where `mask` is set, else of `self`.
    #[inline(always)]
    fn select(self, a: F64x4, mask: F64x4) -> F64x4 {
        F64x4(v128_bitselect(a.0, self.0, mask.0), v128_bitselect(a.1, self.1, mask.1))
    }

    #[inline(always)]
    fn map(self, f: impl Fn(v128) -> v128) -> F64x4 {
        F64x4(f(self.0), f(self.1))
    }
}

/// Lane-wise natural log of a, which must be 0, +inf, NaN or a normal f64 (no
/// subnormals: an LRN denominator bias + alpha/size * S is built from f32 values,
/// so it is 0 or larger than 2^-400 in magnitude).
#[inline(always)]
fn ln(a: F64x4, c: &Consts) -> F64x4 {
    // a = m * 2^e with m in [1, 2): exponent and mantissa straight from the bits.
    let exp_bits = a.map(|v| u64x2_shr(v, 52));
    let e = exp_bits.map(|v| f64x2_convert_low_i32x4(i32x4_shuffle::<0, 2, 0, 2>(v, v)));
    let m = a.and(c.mantissa_mask.into()).or(c.one.into());
    // Centre m on 1, in [sqrt(1/2), sqrt(2)), so the series argument stays small.
    let big = m.gt(c.sqrt2.into());
    let m = m.select(m.mul(c.half.into()), big);
    let e = e.sub(c.exponent_bias.into()).add(big.and(c.one.into()));
    // ln m = 2 atanh(s), s = (m - 1) / (m + 1), |s| < 0.172: the odd series
    // 2s (1 + s^2/3 + s^4/5 + ...) to s^15 leaves < 2e-13 relative.
    let s = m.sub(c.one.into()).div(m.add(c.one.into())); // m - 1 is exact (Sterbenz)
    let z = s.mul(s);
    let p = estrin(z, &c.ln_series);
    let s2 = s.add(s);
    let ln_m = s2.add(s2.mul(z.mul(p)));
    let r = e.mul(c.ln2_hi.into()).add(e.mul(c.ln2_lo.into()).add(ln_m));
    // The bit tricks do not cover 0 (-> -inf), +inf and NaN (-> themselves); the
    // fix is worked out from `a` alone, off the critical path.
    let zero = a.eq(c.zero.into());
    let special = zero.or(a.lt(c.inf.into()).xor(c.all_ones.into()));
    r.select(a.select(c.neg_inf.into(), zero), special)
}

/// Lane-wise e^t (NaN stays NaN, overflow gives +inf, underflow 0).
#[inline(always)]
fn exp(t: F64x4, c: &Consts) -> F64x4 {
    // Outside [-746, 710] the result is 0 or +inf anyway; clamping keeps k within
    // what the two-step scaling below can build. pmax/pmin return their first
    // operand when the comparison fails, so a NaN t stays NaN.
    let t = t.pmax(c.exp_min.into()).pmin(c.exp_max.into());
    // t = k ln2 + r, |r| <= ln2 / 2.
    let k = t.mul(c.inv_ln2.into()).map(f64x2_nearest_);
    let r = t.sub(k.mul(c.ln2_hi.into())).sub(k.mul(c.ln2_lo.into()));
    // Taylor to r^10 (coefficients 1/n!): the remainder is below 6e-13 for |r| <= 0.347.
    let p = estrin(r, &c.exp_series);
    // 2^k as two factors 2^k1 * 2^k2, each a normal f64, so k down to -1076 (for
    // subnormal results) and up to 1024 (overflow to inf) both work.
    let ki = k.map(i32x4_trunc_sat_f64x2_zero_);
    let k1 = ki.map(|v| i32x4_shr(v, 1));
    let k2 = F64x4(i32x4_sub(ki.0, k1.0), i32x4_sub(ki.1, k1.1));
    let two_to = |k: v128| i64x2_shl(i64x2_add(i64x2_extend_low_i32x4(k), c.exponent_bias_i64), 52);
    p.mul(k1.map(two_to)).mul(k2.map(two_to))
}

// Plain fns for `map`: target-feature intrinsics do not implement the Fn traits.
#[inline(always)]
fn f64x2_nearest_(v: v128) -> v128 {
    f64x2_nearest(v)
}

#[inline(always)]
fn i32x4_trunc_sat_f64x2_zero_(v: v128) -> v128 {
    i32x4_trunc_sat_f64x2_zero(v)
}

/// c[0] + c[1] x + ... + c[N-1] x^(N-1) by Estrin's scheme: neighbouring terms are
/// paired with x, the pairs with x^2, then x^4, ..., so the dependency chain is
/// about log2(N) multiply-adds deep instead of N. Fully unrolled for a constant N.
#[inline(always)]
fn estrin<const N: usize>(x: F64x4, c: &[v128; N]) -> F64x4 {
    let mut terms = c.map(F64x4::from);
    let mut len = N;
    let mut power = x;
    while len > 1 {
        for i in 0..len / 2 {
            terms[i] = terms[2 * i].add(terms[2 * i + 1].mul(power));
        }
        if len % 2 == 1 {
            terms[len / 2] = terms[len - 1];
        }
        len = (len + 1) / 2;
        power = power.mul(power);
    }
    terms[0]
}

/// d^p for one exponent p, with what Math.pow does for negative bases worked out
/// once per call.
pub struct Pow {
    p: v128,
    /// Sign bit to flip for a negative base when p is an odd integer.
    negative_sign: v128,
    /// All ones (a NaN) for a negative base when p is not an integer.
    negative_nan: v128,
    consts: Consts,
}

impl Pow {
    pub fn new(p: f32) -> Pow {
        // Every f32 of magnitude >= 2^24 is an even integer; for p = +-inf,
        // Math.pow ignores the base's sign too. (no_std's f32 has no `abs`.)
        let (integer, odd) = if p > -16_777_216.0 && p < 16_777_216.0 {
            let i = p as i32;
            (i as f32 == p, i % 2 != 0)
        } else {
            (true, false)
        };
        Pow {
            p: f64x2_splat(p as f64),
            negative_sign: u64x2_splat(if integer && odd { 1 << 63 } else { 0 }),
            negative_nan: u64x2_splat(if integer { 0 } else { u64::MAX }),
            consts: Consts::new(),
        }
    }

    /// d^p lane-wise, following Math.pow for p != 0: |d|^p = exp(p ln |d|), then the
    /// sign or NaN a negative d calls for.
    #[inline(always)]
    pub fn apply(&self, d: F64x4) -> F64x4 {
        let c = &self.consts;
        let r = exp(F64x4::from(self.p).mul(ln(d.map(f64x2_abs_), c)), c);
        let if_negative = r.xor(self.negative_sign.into()).or(self.negative_nan.into());
        r.select(if_negative, d.lt(c.zero.into()))
    }
}

#[inline(always)]
fn f64x2_abs_(v: v128) -> v128 {
    f64x2_abs(v)
}
