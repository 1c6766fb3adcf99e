//! libm's exponential and `expm1`, computed in line: the default kernel's
//! `exp` and `expm1` calls without the calls.
//!
//! The default kernel promises libm's bits (`f64::exp`), and its ~18
//! exponentials per neuron-step were most of its time: each a call through
//! the PLT into glibc's errno wrapper and `__exp` (about 51 instructions),
//! one lane at a time. glibc (since 2.28) computes `exp` with the algorithm
//! of Arm's optimized-routines (Szabolcs Nagy, `math/exp.c` and
//! `math/exp_data.c`, Copyright (c) 2018 Arm Limited, MIT licence):
//! `x = k ln2/128 + r` with |r| <= ln2/256, `2^(k/128)` from a 128-entry
//! table of (rounding tail, scale bits) pairs, and a degree-5 polynomial for
//! e^r. [`exp_core`] is that algorithm's main path operation for operation,
//! with the fused multiply-adds where glibc's FMA build (`__exp_fma`,
//! chosen on every x86-64 CPU with FMA and AVX2) has them: read off its machine
//! code (glibc 2.36), which fuses `x InvLn2N + Shift` and the reduction's
//! products where the C source writes separate operations. The constants
//! and the table are `__exp_data`'s, read from that build.
//!
//! Arguments outside the main path (|x| < 2^-54, |x| >= 512, NaN and
//! infinities: overflow, underflow and errno live there) go to `f64::exp`
//! itself, so every result is libm's by construction there, and by the
//! same operations in the same order everywhere else. Being plain
//! arithmetic with a table lookup, a loop of [`exp_core`] vectorises
//! (the lookups are gathers in the AVX-512 build, scalar loads in the
//! AVX2 one).
//!
//! The in-line path is taken only where it is libm ([`usable`]): on a CPU
//! with AVX2 and FMA, the features under which glibc picks `__exp_fma`,
//! and when [`matches_libm`] holds, a check once per process of 12 000
//! arguments over the whole range, bit for bit, which tells another libm
//! (musl, macOS, a future glibc with another algorithm) from this one.
//! Elsewhere [`exp_each`] calls `f64::exp` as before. A mere variant of
//! the algorithm can differ from it in a few arguments per million (un-
//! fusing one multiply-add changed 2 of 4 million results), which no quick
//! check sees: that is why the FMA build is matched operation for
//! operation and tested on 2 million arguments against the machine's libm
//! (`in_line_exp_gives_the_bits_of_glibc`).
//!
//! `expm1` (four per neuron-step, in alpha_m and alpha_n) is fdlibm's in
//! glibc (`sysdeps/ieee754/dbl-64/s_expm1.c`; its FMA build
//! `__expm1_fma`, picked under the same features): [`expm1_core`] is its
//! main path (2^-54 <= |x| < 56 ln2, which holds both of the rate
//! functions' arguments for any voltage in (-428, 333) mV) with every branch
//! computed and one selected, so that a pass vectorises too, checked and
//! tested the same way (`in_line_expm1_gives_the_bits_of_glibc`).

/// 128 / ln 2, and -ln2 / 128 split in a high part (exact products with
/// k) and a low part.
const INV_LN2_N: f64 = f64::from_bits(0x40671547652b82fe);
const NEG_LN2_HI_N: f64 = f64::from_bits(0xbf762e42fefa0000);
const NEG_LN2_LO_N: f64 = f64::from_bits(0xbd0cf79abc9e3b3a);
/// 1.5 * 2^52: adding it rounds to an integer held in the low bits.
const SHIFT: f64 = f64::from_bits(0x4338000000000000);
/// e^r ~ 1 + r + C2 r^2 + C3 r^3 + C4 r^4 + C5 r^5 on |r| <= ln2/256.
const C2: f64 = f64::from_bits(0x3fdffffffffffdbd);
const C3: f64 = f64::from_bits(0x3fc555555555543c);
const C4: f64 = f64::from_bits(0x3fa55555cf172b91);
const C5: f64 = f64::from_bits(0x3f81111167a4d017);

/// For j = 0..128: the bits of `tail` and of `scale` minus `j << 45`,
/// where `scale (1 + tail)` is 2^(j/128) to twice double precision.
#[rustfmt::skip]
static TABLE: [[u64; 2]; 128] = [
    [0x0000000000000000, 0x3ff0000000000000],
    [0x3c9b3b4f1a88bf6e, 0x3feff63da9fb3335],
    [0xbc7160139cd8dc5d, 0x3fefec9a3e778061],
    [0xbc905e7a108766d1, 0x3fefe315e86e7f85],
    [0x3c8cd2523567f613, 0x3fefd9b0d3158574],
    [0xbc8bce8023f98efa, 0x3fefd06b29ddf6de],
    [0x3c60f74e61e6c861, 0x3fefc74518759bc8],
    [0x3c90a3e45b33d399, 0x3fefbe3ecac6f383],
    [0x3c979aa65d837b6d, 0x3fefb5586cf9890f],
    [0x3c8eb51a92fdeffc, 0x3fefac922b7247f7],
    [0x3c3ebe3d702f9cd1, 0x3fefa3ec32d3d1a2],
    [0xbc6a033489906e0b, 0x3fef9b66affed31b],
    [0xbc9556522a2fbd0e, 0x3fef9301d0125b51],
    [0xbc5080ef8c4eea55, 0x3fef8abdc06c31cc],
    [0xbc91c923b9d5f416, 0x3fef829aaea92de0],
    [0x3c80d3e3e95c55af, 0x3fef7a98c8a58e51],
    [0xbc801b15eaa59348, 0x3fef72b83c7d517b],
    [0xbc8f1ff055de323d, 0x3fef6af9388c8dea],
    [0x3c8b898c3f1353bf, 0x3fef635beb6fcb75],
    [0xbc96d99c7611eb26, 0x3fef5be084045cd4],
    [0x3c9aecf73e3a2f60, 0x3fef54873168b9aa],
    [0xbc8fe782cb86389d, 0x3fef4d5022fcd91d],
    [0x3c8a6f4144a6c38d, 0x3fef463b88628cd6],
    [0x3c807a05b0e4047d, 0x3fef3f49917ddc96],
    [0x3c968efde3a8a894, 0x3fef387a6e756238],
    [0x3c875e18f274487d, 0x3fef31ce4fb2a63f],
    [0x3c80472b981fe7f2, 0x3fef2b4565e27cdd],
    [0xbc96b87b3f71085e, 0x3fef24dfe1f56381],
    [0x3c82f7e16d09ab31, 0x3fef1e9df51fdee1],
    [0xbc3d219b1a6fbffa, 0x3fef187fd0dad990],
    [0x3c8b3782720c0ab4, 0x3fef1285a6e4030b],
    [0x3c6e149289cecb8f, 0x3fef0cafa93e2f56],
    [0x3c834d754db0abb6, 0x3fef06fe0a31b715],
    [0x3c864201e2ac744c, 0x3fef0170fc4cd831],
    [0x3c8fdd395dd3f84a, 0x3feefc08b26416ff],
    [0xbc86a3803b8e5b04, 0x3feef6c55f929ff1],
    [0xbc924aedcc4b5068, 0x3feef1a7373aa9cb],
    [0xbc9907f81b512d8e, 0x3feeecae6d05d866],
    [0xbc71d1e83e9436d2, 0x3feee7db34e59ff7],
    [0xbc991919b3ce1b15, 0x3feee32dc313a8e5],
    [0x3c859f48a72a4c6d, 0x3feedea64c123422],
    [0xbc9312607a28698a, 0x3feeda4504ac801c],
    [0xbc58a78f4817895b, 0x3feed60a21f72e2a],
    [0xbc7c2c9b67499a1b, 0x3feed1f5d950a897],
    [0x3c4363ed60c2ac11, 0x3feece086061892d],
    [0x3c9666093b0664ef, 0x3feeca41ed1d0057],
    [0x3c6ecce1daa10379, 0x3feec6a2b5c13cd0],
    [0x3c93ff8e3f0f1230, 0x3feec32af0d7d3de],
    [0x3c7690cebb7aafb0, 0x3feebfdad5362a27],
    [0x3c931dbdeb54e077, 0x3feebcb299fddd0d],
    [0xbc8f94340071a38e, 0x3feeb9b2769d2ca7],
    [0xbc87deccdc93a349, 0x3feeb6daa2cf6642],
    [0xbc78dec6bd0f385f, 0x3feeb42b569d4f82],
    [0xbc861246ec7b5cf6, 0x3feeb1a4ca5d920f],
    [0x3c93350518fdd78e, 0x3feeaf4736b527da],
    [0x3c7b98b72f8a9b05, 0x3feead12d497c7fd],
    [0x3c9063e1e21c5409, 0x3feeab07dd485429],
    [0x3c34c7855019c6ea, 0x3feea9268a5946b7],
    [0x3c9432e62b64c035, 0x3feea76f15ad2148],
    [0xbc8ce44a6199769f, 0x3feea5e1b976dc09],
    [0xbc8c33c53bef4da8, 0x3feea47eb03a5585],
    [0xbc845378892be9ae, 0x3feea34634ccc320],
    [0xbc93cedd78565858, 0x3feea23882552225],
    [0x3c5710aa807e1964, 0x3feea155d44ca973],
    [0xbc93b3efbf5e2228, 0x3feea09e667f3bcd],
    [0xbc6a12ad8734b982, 0x3feea012750bdabf],
    [0xbc6367efb86da9ee, 0x3fee9fb23c651a2f],
    [0xbc80dc3d54e08851, 0x3fee9f7df9519484],
    [0xbc781f647e5a3ecf, 0x3fee9f75e8ec5f74],
    [0xbc86ee4ac08b7db0, 0x3fee9f9a48a58174],
    [0xbc8619321e55e68a, 0x3fee9feb564267c9],
    [0x3c909ccb5e09d4d3, 0x3feea0694fde5d3f],
    [0xbc7b32dcb94da51d, 0x3feea11473eb0187],
    [0x3c94ecfd5467c06b, 0x3feea1ed0130c132],
    [0x3c65ebe1abd66c55, 0x3feea2f336cf4e62],
    [0xbc88a1c52fb3cf42, 0x3feea427543e1a12],
    [0xbc9369b6f13b3734, 0x3feea589994cce13],
    [0xbc805e843a19ff1e, 0x3feea71a4623c7ad],
    [0xbc94d450d872576e, 0x3feea8d99b4492ed],
    [0x3c90ad675b0e8a00, 0x3feeaac7d98a6699],
    [0x3c8db72fc1f0eab4, 0x3feeace5422aa0db],
    [0xbc65b6609cc5e7ff, 0x3feeaf3216b5448c],
    [0x3c7bf68359f35f44, 0x3feeb1ae99157736],
    [0xbc93091fa71e3d83, 0x3feeb45b0b91ffc6],
    [0xbc5da9b88b6c1e29, 0x3feeb737b0cdc5e5],
    [0xbc6c23f97c90b959, 0x3feeba44cbc8520f],
    [0xbc92434322f4f9aa, 0x3feebd829fde4e50],
    [0xbc85ca6cd7668e4b, 0x3feec0f170ca07ba],
    [0x3c71affc2b91ce27, 0x3feec49182a3f090],
    [0x3c6dd235e10a73bb, 0x3feec86319e32323],
    [0xbc87c50422622263, 0x3feecc667b5de565],
    [0x3c8b1c86e3e231d5, 0x3feed09bec4a2d33],
    [0xbc91bbd1d3bcbb15, 0x3feed503b23e255d],
    [0x3c90cc319cee31d2, 0x3feed99e1330b358],
    [0x3c8469846e735ab3, 0x3feede6b5579fdbf],
    [0xbc82dfcd978e9db4, 0x3feee36bbfd3f37a],
    [0x3c8c1a7792cb3387, 0x3feee89f995ad3ad],
    [0xbc907b8f4ad1d9fa, 0x3feeee07298db666],
    [0xbc55c3d956dcaeba, 0x3feef3a2b84f15fb],
    [0xbc90a40e3da6f640, 0x3feef9728de5593a],
    [0xbc68d6f438ad9334, 0x3feeff76f2fb5e47],
    [0xbc91eee26b588a35, 0x3fef05b030a1064a],
    [0x3c74ffd70a5fddcd, 0x3fef0c1e904bc1d2],
    [0xbc91bdfbfa9298ac, 0x3fef12c25bd71e09],
    [0x3c736eae30af0cb3, 0x3fef199bdd85529c],
    [0x3c8ee3325c9ffd94, 0x3fef20ab5fffd07a],
    [0x3c84e08fd10959ac, 0x3fef27f12e57d14b],
    [0x3c63cdaf384e1a67, 0x3fef2f6d9406e7b5],
    [0x3c676b2c6c921968, 0x3fef3720dcef9069],
    [0xbc808a1883ccb5d2, 0x3fef3f0b555dc3fa],
    [0xbc8fad5d3ffffa6f, 0x3fef472d4a07897c],
    [0xbc900dae3875a949, 0x3fef4f87080d89f2],
    [0x3c74a385a63d07a7, 0x3fef5818dcfba487],
    [0xbc82919e2040220f, 0x3fef60e316c98398],
    [0x3c8e5a50d5c192ac, 0x3fef69e603db3285],
    [0x3c843a59ac016b4b, 0x3fef7321f301b460],
    [0xbc82d52107b43e1f, 0x3fef7c97337b9b5f],
    [0xbc892ab93b470dc9, 0x3fef864614f5a129],
    [0x3c74b604603a88d3, 0x3fef902ee78b3ff6],
    [0x3c83c5ec519d7271, 0x3fef9a51fbc74c83],
    [0xbc8ff7128fd391f0, 0x3fefa4afa2a490da],
    [0xbc8dae98e223747d, 0x3fefaf482d8e67f1],
    [0x3c8ec3bc41aa2008, 0x3fefba1bee615a27],
    [0x3c842b94c3a9eb32, 0x3fefc52b376bba97],
    [0x3c8a64a931d185ee, 0x3fefd0765b6e4540],
    [0xbc8e37bae43be3ed, 0x3fefdbfdad9cbe14],
    [0x3c77893b4d91cd9d, 0x3fefe7c1819e90d8],
    [0x3c5305c14160cc89, 0x3feff3c22b8f71f1],
];

/// Whether glibc's `exp` takes its main path for `x`: 2^-54 <= |x| < 512
/// (top 12 bits of |x| in [0x3c9, 0x408)); false for NaN and infinities.
#[inline(always)]
fn on_main_path(x: f64) -> bool {
    let abs_top = (x.to_bits() >> 52) & 0x7ff;
    abs_top.wrapping_sub(0x3c9) < 0x408 - 0x3c9
}

/// glibc's `exp` main path (see the module doc): libm's bits for every `x`
/// with [`on_main_path`], some finite or NaN value otherwise.
#[inline(always)]
fn exp_core(x: f64) -> f64 {
    let kd = x.mul_add(INV_LN2_N, SHIFT);
    let ki = kd.to_bits();
    let kd = kd - SHIFT;
    let r = kd.mul_add(NEG_LN2_LO_N, kd.mul_add(NEG_LN2_HI_N, x));
    let [tail, scale_bits] = TABLE[(ki & 127) as usize];
    let scale = f64::from_bits(scale_bits.wrapping_add(ki << 45));
    let r2 = r * r;
    let p = r.mul_add(C3, C2).mul_add(r2, r + f64::from_bits(tail));
    let tmp = (r2 * r2).mul_add(r.mul_add(C5, C4), p);
    scale.mul_add(tmp, scale)
}

/// e^x, libm's bits: the main path in line, the rest by `f64::exp`.
#[inline(always)]
pub fn exp(x: f64) -> f64 {
    in_line_or_libm::<Exp>(x)
}

/// Replaces every entry by its exponential, libm's bits: computed in line
/// (a loop that vectorises) when `in_line` (pass [`usable`]), else by
/// `f64::exp` one by one. Entries off the main path are redone with
/// `f64::exp`.
#[inline(always)]
pub fn exp_each<const C: usize>(xs: &mut [f64; C], in_line: bool) {
    each_in_line_or_libm::<Exp, C>(xs, in_line);
}

/// [`exp_each`] on every entry of every row, the rows taken as one run
/// of entries (see [`each_of`]).
#[inline(always)]
pub fn exp_rows<const C: usize, const R: usize>(rows: &mut [[f64; C]; R], in_line: bool) {
    each_of::<Exp>(rows.as_flattened_mut(), in_line);
}

/// A libm function with a main path computed in line. (A trait rather
/// than function arguments: with the three passed as closures, the
/// default ran 3x slower, 2.3 -> 7.7 s for 2000 x 100 ms pairs.)
trait InLine {
    /// Whether glibc takes the main path for `x`.
    fn on_path(x: f64) -> bool;
    /// The main path: libm's bits where [`InLine::on_path`].
    fn core(x: f64) -> f64;
    /// libm itself.
    fn libm(x: f64) -> f64;
}

struct Exp;

impl InLine for Exp {
    #[inline(always)]
    fn on_path(x: f64) -> bool {
        on_main_path(x)
    }
    #[inline(always)]
    fn core(x: f64) -> f64 {
        exp_core(x)
    }
    #[inline(always)]
    fn libm(x: f64) -> f64 {
        x.exp()
    }
}

struct Expm1;

impl InLine for Expm1 {
    #[inline(always)]
    fn on_path(x: f64) -> bool {
        expm1_on_main_path(x)
    }
    #[inline(always)]
    fn core(x: f64) -> f64 {
        expm1_core(x)
    }
    #[inline(always)]
    fn libm(x: f64) -> f64 {
        x.exp_m1()
    }
}

/// `F::core(x)` on the main path, else libm's `F::libm(x)`.
#[inline(always)]
fn in_line_or_libm<F: InLine>(x: f64) -> f64 {
    if F::on_path(x) {
        F::core(x)
    } else {
        F::libm(x)
    }
}

/// [`each_in_line_or_libm`] on a run of entries of any length: chunks of
/// 8 (one AVX-512 register, two AVX2 ones), then one of 4, of 2 and of 1
/// as the rest needs.
#[inline(always)]
fn each_of<F: InLine>(xs: &mut [f64], in_line: bool) {
    let mut chunks = xs.chunks_exact_mut(8);
    for chunk in &mut chunks {
        if let Ok(chunk) = <&mut [f64; 8]>::try_from(chunk) {
            each_in_line_or_libm::<F, 8>(chunk, in_line);
        }
    }
    let rest = chunks.into_remainder();
    // Fewer than 8 left: `len & 4` is 4 or 0, then `len & 2` is 2 or 0.
    let (four, rest) = rest.split_at_mut(rest.len() & 4);
    if let Ok(four) = <&mut [f64; 4]>::try_from(four) {
        each_in_line_or_libm::<F, 4>(four, in_line);
    }
    let (two, rest) = rest.split_at_mut(rest.len() & 2);
    if let Ok(two) = <&mut [f64; 2]>::try_from(two) {
        each_in_line_or_libm::<F, 2>(two, in_line);
    }
    if let Ok(one) = <&mut [f64; 1]>::try_from(rest) {
        each_in_line_or_libm::<F, 1>(one, in_line);
    }
}

/// [`in_line_or_libm`] for every entry, in passes: `F::core` of every
/// entry (a loop that vectorises), then `F::libm` of those off the path,
/// if any; with `in_line` false, `F::libm` of every entry.
#[inline(always)]
fn each_in_line_or_libm<F: InLine, const C: usize>(xs: &mut [f64; C], in_line: bool) {
    if !in_line {
        for x in xs.iter_mut() {
            *x = F::libm(*x);
        }
        return;
    }
    let mut all_on_path = true;
    let mut out = [0.0; C];
    for l in 0..C {
        all_on_path &= F::on_path(xs[l]);
        out[l] = F::core(xs[l]);
    }
    if !all_on_path {
        for l in 0..C {
            if !F::on_path(xs[l]) {
                out[l] = F::libm(xs[l]);
            }
        }
    }
    *xs = out;
}

/// fdlibm's `expm1` (Sun Microsystems, 1993; glibc's
/// `sysdeps/ieee754/dbl-64/s_expm1.c`): `x = k ln2 + r` with `ln2` split
/// in a high part (exact products with k) and a low part, |r| <= ln2/2, a
/// rational approximation of e^r - 1 scaled by 2^k. The constants as
/// glibc's FMA build (`__expm1_fma`) reads them.
const EM1_LN2_HI: f64 = f64::from_bits(0x3fe62e42fee00000);
const EM1_LN2_LO: f64 = f64::from_bits(0x3dea39ef35793c76);
const EM1_INV_LN2: f64 = f64::from_bits(0x3ff71547652b82fe);
const Q1: f64 = f64::from_bits(0xbfa11111111110f4);
const Q2: f64 = f64::from_bits(0x3f5a01a019fe5585);
const Q3: f64 = f64::from_bits(0xbf14ce199eaadbb7);
const Q4: f64 = f64::from_bits(0x3ed0cfca86e65239);
const Q5: f64 = f64::from_bits(0xbe8afdb76e09c32d);

/// Whether glibc's `expm1` takes its main path for `x`: 2^-54 <= |x| <
/// 56 ln2 (high word of |x| in [0x3c900000, 0x4043687a)), where it
/// reduces, approximates and scales; false for NaN and infinities. (At
/// and above 56 ln2 it returns -1 or overflows towards e^x, below 2^-54
/// x itself.)
#[inline(always)]
fn expm1_on_main_path(x: f64) -> bool {
    let high_abs = (x.to_bits() >> 32) as u32 & 0x7fff_ffff;
    high_abs.wrapping_sub(0x3c90_0000) < 0x4043_687a - 0x3c90_0000
}

/// glibc's `expm1` main path, without branches: libm's bits for every `x`
/// with [`expm1_on_main_path`], some finite or NaN value otherwise.
///
/// fdlibm branches on the size of |x| to pick k (0 up to ln2/2, +-1 below
/// 1.5 ln2, else x/ln2 rounded half away from zero by truncation) and on k
/// to pick how the result is assembled; here every candidate is computed
/// and one selected, so a loop of these vectorises. With k = 0 or +-1 the
/// general reduction `hi = x - k ln2_hi, lo = k ln2_lo` is fdlibm's special
/// cases exactly (the products are exact, `hi` is one rounding either
/// way). The multiply-adds are where `__expm1_fma` has them (glibc 2.36,
/// read off its machine code), which fuses the polynomial's steps, the
/// `3 - r1 hfx`, `6 - x t`, the final corrections and the k = +-1
/// assemblies; `x invln2 +- 0.5` stays two roundings, as there.
#[inline(always)]
fn expm1_core(x: f64) -> f64 {
    let high_abs = (x.to_bits() >> 32) as u32 & 0x7fff_ffff;
    let negative = x.is_sign_negative();
    let rounded = x * EM1_INV_LN2 + if negative { -0.5 } else { 0.5 };
    let t = if high_abs <= 0x3fd6_2e42 {
        0.0
    } else if high_abs < 0x3ff0_a2b2 {
        if negative {
            -1.0
        } else {
            1.0
        }
    } else {
        rounded.trunc()
    };
    // Reduction: x = (hi - lo) + c, |hi - lo| <= ln2/2.
    let hi = (-t).mul_add(EM1_LN2_HI, x);
    let lo = t * EM1_LN2_LO;
    let r = hi - lo;
    let c = (hi - r) - lo;
    // e^r - 1 = r - (r e - hxs) (k = 0), with e from fdlibm's rational
    // approximation.
    let hfx = r * 0.5;
    let hxs = r * hfx;
    let h2 = hxs * hxs;
    let r1 = (h2 * h2).mul_add(
        hxs.mul_add(Q5, Q4),
        h2.mul_add(hxs.mul_add(Q3, Q2), hxs.mul_add(Q1, 1.0)),
    );
    let t3 = (-r1).mul_add(hfx, 3.0);
    let e = (r1 - t3) / (-r).mul_add(t3, 6.0) * hxs;
    let k_zero = r - e.mul_add(r, -hxs);
    // k != 0: the reduction's error c folded in, then 2^k (e^r - 1) +
    // (2^k - 1) assembled as fdlibm does for each range of k.
    let e = (e - c).mul_add(r, -c) - hxs;
    let k_minus_one = (r - e).mul_add(0.5, -0.5);
    let k_one = if r < -0.25 {
        (e - (r + 0.5)) * -2.0
    } else {
        (r - e).mul_add(2.0, 1.0)
    };
    // k as an integer (|k| <= 56 on the main path), 2^-k, and y 2^k by
    // adding k to the exponent bits, as fdlibm does.
    let k = (t + SHIFT).to_bits().wrapping_sub(SHIFT.to_bits());
    let two_to_minus_k = f64::from_bits(1023u64.wrapping_sub(k) << 52);
    let scaled = |y: f64| f64::from_bits(y.to_bits().wrapping_add(k << 52));
    let k_far = scaled(1.0 - (e - r)) - 1.0;
    let k_below_20 = scaled((1.0 - two_to_minus_k) - (e - r));
    let k_from_20 = scaled((r - (e + two_to_minus_k)) + 1.0);
    if t == 0.0 {
        k_zero
    } else if t == -1.0 {
        k_minus_one
    } else if t == 1.0 {
        k_one
    } else if t <= -2.0 || t > 56.0 {
        k_far
    } else if t < 20.0 {
        k_below_20
    } else {
        k_from_20
    }
}

/// e^x - 1, libm's bits: the main path in line, the rest by `f64::exp_m1`.
#[inline(always)]
pub fn expm1(x: f64) -> f64 {
    in_line_or_libm::<Expm1>(x)
}

/// Replaces every entry `x` by `e^x - 1`, libm's bits, as [`exp_each`]
/// does for `e^x`.
#[inline(always)]
pub fn expm1_each<const C: usize>(xs: &mut [f64; C], in_line: bool) {
    each_in_line_or_libm::<Expm1, C>(xs, in_line);
}

/// [`expm1_each`] on every entry of every row, as [`exp_rows`].
#[inline(always)]
pub fn expm1_rows<const C: usize, const R: usize>(rows: &mut [[f64; C]; R], in_line: bool) {
    each_of::<Expm1>(rows.as_flattened_mut(), in_line);
}

/// Whether [`exp_each`] may compute in line: the CPU has FMA (without it,
/// `mul_add` is a slow software call) and [`matches_libm`] holds. Checked
/// once per process.
pub fn usable() -> bool {
    static USABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *USABLE.get_or_init(|| super::simd() != super::Simd::Portable && matches_libm())
}

/// Whether [`exp`] and [`expm1`] give libm's bits (`f64::exp`,
/// `f64::exp_m1`) on 12 000 arguments: a sweep over [-760, 760] (overflow,
/// underflow, subnormal results), 8 000 pseudo-random ones in [-40, 40]
/// (the stepper's range, and all of expm1's branches), and the boundaries
/// of both main paths and of expm1's ranges of k.
pub fn matches_libm() -> bool {
    let sweep = (0..4000).map(|i| -760.0 + 1520.0 * f64::from(i) / 3999.0);
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let random = (0..8000).map(move |_| -40.0 + 80.0 * uniform(&mut state));
    let edges = [
        0.0,
        f64::from_bits(0x3c90000000000000),
        f64::from_bits(0x3c8fffffffffffff),
        512.0,
        f64::from_bits(0x407fffffffffffff),
        709.782712893384,
        -708.3964185322641,
        -745.1332191019411,
        f64::INFINITY,
        // expm1: |x| = ln2/2, 1.5 ln2, 56 ln2, on either side.
        f64::from_bits(0x3fd62e42ffffffff),
        f64::from_bits(0x3fd62e4300000000),
        f64::from_bits(0x3ff0a2b1ffffffff),
        f64::from_bits(0x3ff0a2b200000000),
        f64::from_bits(0x40436879ffffffff),
        f64::from_bits(0x4043687a00000000),
        f64::NAN,
    ];
    let same = |a: f64, b: f64| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
    sweep
        .chain(random)
        .chain(edges.into_iter().flat_map(|x| [x, -x]))
        .all(|x| same(exp(x), x.exp()) && same(expm1(x), x.exp_m1()))
}

/// A uniform number in [0, 1) from a xorshift64 generator: fixed
/// arguments for the checks, no rand dependency in them.
fn uniform(state: &mut u64) -> f64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    (*state >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A double with random sign and mantissa and an exponent field drawn
    /// uniformly from [lo, hi).
    fn random_bits_in(state: &mut u64, lo: u64, hi: u64) -> f64 {
        uniform(state);
        let exponent = lo + (*state >> 52) % (hi - lo);
        f64::from_bits(*state & 0x800f_ffff_ffff_ffff | exponent << 52)
    }

    /// [`exp_rows`] or [`expm1_rows`] on R rows of C entries.
    type RowsFn<const C: usize, const R: usize> = fn(&mut [[f64; C]; R], bool);

    /// How many entries of rows of one, two and eight entries (runs of
    /// 2 + 1, of 8 + 4 + 2 and of 8 + 8), filled with x and -x by turns,
    /// `rows` gets wrong against `libm`.
    fn rows_mismatch(x: f64, libm: fn(f64) -> f64, rows: (RowsFn<1, 3>, RowsFn<2, 7>, RowsFn<8, 2>)) -> u32 {
        let arg = |k: usize| if k % 2 == 0 { x } else { -x };
        let wrong = |ys: &[f64]| {
            let bad = ys
                .iter()
                .enumerate()
                .filter(|&(k, y)| y.to_bits() != libm(arg(k)).to_bits());
            bad.count() as u32
        };
        let mut ones: [[f64; 1]; 3] = std::array::from_fn(|j| [arg(j)]);
        let mut twos: [[f64; 2]; 7] = std::array::from_fn(|j| std::array::from_fn(|l| arg(2 * j + l)));
        let mut eights: [[f64; 8]; 2] = std::array::from_fn(|j| std::array::from_fn(|l| arg(8 * j + l)));
        rows.0(&mut ones, true);
        rows.1(&mut twos, true);
        rows.2(&mut eights, true);
        wrong(ones.as_flattened()) + wrong(twos.as_flattened()) + wrong(eights.as_flattened())
    }

    /// Bit for bit `f64::exp` on x86-64 Linux (glibc with FMA, the machines
    /// this project runs and tests on) over 2 million arguments: the
    /// stepper's range densely, the whole range of exp coarsely, and
    /// random bits with every exponent from below 2^-54 to above 512 (tiny
    /// arguments, which uniform draws miss). Elsewhere the libm may be
    /// another, and [`usable`] then keeps `f64::exp`.
    #[test]
    #[cfg(all(target_arch = "x86_64", target_os = "linux", target_env = "gnu"))]
    fn in_line_exp_gives_the_bits_of_glibc() {
        // glibc runs __exp_fma where the CPU has FMA and AVX2.
        if crate::integrate::simd() == crate::integrate::Simd::Portable {
            return;
        }
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut mismatches = 0;
        for i in 0..2_000_000 {
            let x = match i % 8 {
                0 | 4 => -760.0 + 1520.0 * uniform(&mut state),
                1 => random_bits_in(&mut state, 0x3c0, 0x40a),
                _ => -60.0 + 120.0 * uniform(&mut state),
            };
            if exp(x).to_bits() != x.exp().to_bits() {
                mismatches += 1;
            }
            let mut one = [x, -x];
            exp_each(&mut one, true);
            if one[0].to_bits() != x.exp().to_bits() || one[1].to_bits() != (-x).exp().to_bits() {
                mismatches += 1;
            }
            if i % 16 == 0 {
                mismatches += rows_mismatch(x, f64::exp, (exp_rows, exp_rows, exp_rows));
            }
        }
        assert_eq!(mismatches, 0);
        assert!(matches_libm());
    }

    /// Bit for bit `f64::exp_m1` on 4 million arguments: the rate
    /// functions' range ([-15, 10]) densely, expm1's small ranges of k
    /// (|x| < 1.5 ln2: k = 0 and +-1, r on either side of -0.25) densely,
    /// its whole main path (|x| < 56 ln2) and beyond coarsely, and random
    /// bits with every exponent from below 2^-54 to above 56 ln2 (tiny
    /// arguments, which uniform draws miss; 200 million such checked
    /// once by hand, exp's too).
    #[test]
    #[cfg(all(target_arch = "x86_64", target_os = "linux", target_env = "gnu"))]
    fn in_line_expm1_gives_the_bits_of_glibc() {
        // glibc runs __expm1_fma where the CPU has FMA and AVX2.
        if crate::integrate::simd() == crate::integrate::Simd::Portable {
            return;
        }
        let mut state = 0x5851_f42d_4c95_7f2d_u64;
        let mut mismatches = 0;
        for i in 0..2_000_000 {
            let u = uniform(&mut state);
            let x = match i % 5 {
                0 => -60.0 + 120.0 * u,
                1 => -1.1 + 2.2 * u,
                2 => random_bits_in(&mut state, 0x3c0, 0x406),
                _ => -15.0 + 25.0 * u,
            };
            if expm1(x).to_bits() != x.exp_m1().to_bits() {
                mismatches += 1;
            }
            let mut two = [x, -x];
            expm1_each(&mut two, true);
            if two[0].to_bits() != x.exp_m1().to_bits() || two[1].to_bits() != (-x).exp_m1().to_bits() {
                mismatches += 1;
            }
            if i % 16 == 0 {
                mismatches += rows_mismatch(x, f64::exp_m1, (expm1_rows, expm1_rows, expm1_rows));
            }
        }
        assert_eq!(mismatches, 0);
    }

    /// Off the main paths (tiny, huge, non-finite), libm's own values.
    #[test]
    fn off_the_main_path_is_libm() {
        for x in [
            0.0,
            1e-300,
            -1e-17,
            600.0,
            710.0,
            -746.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ] {
            assert!(!on_main_path(x), "{x}");
            assert_eq!(exp(x).to_bits(), x.exp().to_bits(), "{x}");
        }
        assert!(exp(f64::NAN).is_nan());
        let mut xs = [1.0, f64::NAN, 800.0, -2.5];
        exp_each(&mut xs, true);
        assert!(xs[1].is_nan());
        assert_eq!(xs[2], f64::INFINITY);
        assert_eq!(xs[3].to_bits(), (-2.5f64).exp().to_bits());
        for x in [0.0, 1e-17, 39.0, -39.0, 709.0, 710.0, f64::INFINITY, f64::NEG_INFINITY] {
            assert!(!expm1_on_main_path(x), "{x}");
            assert_eq!(expm1(x).to_bits(), x.exp_m1().to_bits(), "{x}");
        }
        assert!(expm1(f64::NAN).is_nan());
        let mut xs = [1.0, f64::NAN, -50.0, 800.0];
        expm1_each(&mut xs, true);
        assert_eq!(xs[0].to_bits(), 1f64.exp_m1().to_bits());
        assert!(xs[1].is_nan());
        assert_eq!(xs[2], -1.0);
        assert_eq!(xs[3], f64::INFINITY);
    }
}
