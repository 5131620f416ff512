/**
 * GPTQ weight rounding (Frantar et al., "GPTQ", 2022; Optimal Brain
 * Quantization, Frantar & Alistarh 2022) with a low-rank Hessian.
 *
 * For a layer y = W x with calibration inputs x_1..x_N (rows of X: [N, K]),
 * GPTQ rounds W's columns one at a time and moves each column's rounding
 * error onto the columns not yet rounded, weighted by the inverse of
 * H = lambda I + X^T X, so that ||(Q - W) X^T|| stays small rather than each
 * weight's own error. The dense algorithm needs H^-1 ([K, K], K = 9216 for
 * AlexNet's fc6) and O(M K^2) work; here H is kept as ridge plus rank N,
 *
 *   H_F^-1 = (I - U_F B U_F^T) / lambda,   B = (lambda I_N + U_F^T U_F)^-1,
 *
 * for the set F of columns still to round (U = X^T, [K, N]), and removing a
 * column from F is a rank-1 (Sherman-Morrison) update of B. The weight
 * updates all lie in the span of U's rows, so they are kept as W0 + D U^T
 * with D: [M, N]. Work O(K (N^2 + M N)), memory O(K N + M N).
 *
 * @module
 */

/**
 * Rounds `w` ([rows, k], row-major) to int8 with the per-row `scales`
 * (q in [-qMax, qMax], 127 by default) by GPTQ on the calibration inputs `x`
 * ([n, k], row-major). `damp` is the ridge as a share of the mean diagonal of X^T X.
 *
 * @example
 * ```ts
 * const q = gptqRound(w, 4, 3, scales, x, 8); // w: [4, 3], x: [8, 3]
 * ```
 */
export function gptqRound(
  w: Float32Array,
  rows: number,
  k: number,
  scales: Float32Array,
  x: Float64Array,
  n: number,
  damp = 0.01,
  qMax = 127,
): Int8Array {
  // u: [k, n], u[j] = column j of x.
  const u = new Float64Array(k * n);
  let trace = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < k; j++) {
      const v = x[i * k + j];
      u[j * n + i] = v;
      trace += v * v;
    }
  }
  const lambda = Math.max(damp * trace / k, 1e-12);
  // b = (lambda I + u^T u)^-1, [n, n].
  const g = new Float64Array(n * n);
  for (let a = 0; a < n; a++) {
    for (let c = a; c < n; c++) {
      let s = 0;
      for (let j = 0; j < k; j++) s += x[a * k + j] * x[c * k + j];
      g[a * n + c] = g[c * n + a] = s;
    }
    g[a * n + a] += lambda;
  }
  const b = invertSpd(g, n);

  const q = new Int8Array(rows * k);
  const d = new Float64Array(rows * n);
  const v = new Float64Array(n);
  for (let j = 0; j < k; j++) {
    const uj = u.subarray(j * n, (j + 1) * n);
    // v = B u_j; the remaining inverse Hessian's diagonal entry is (1 - u_j . v) / lambda.
    let uv = 0;
    for (let a = 0; a < n; a++) {
      let s = 0;
      for (let c = 0; c < n; c++) s += b[a * n + c] * uj[c];
      v[a] = s;
      uv += uj[a] * s;
    }
    const rest = 1 - uv;
    const pjj = rest / lambda;
    for (let m = 0; m < rows; m++) {
      const dm = d.subarray(m * n, (m + 1) * n);
      let wj = w[m * k + j];
      for (let a = 0; a < n; a++) wj += dm[a] * uj[a];
      const s = Math.fround(scales[m]);
      const qj = Math.max(-qMax, Math.min(qMax, Math.round(wj / s)));
      q[m * k + j] = qj;
      // Columns r > j move by err * v . u_r / lambda (H_F^-1's row j off the diagonal).
      const e = (wj - qj * s) / pjj / lambda;
      for (let a = 0; a < n; a++) dm[a] += e * v[a];
    }
    // Column j leaves F: B += v v^T / (1 - u_j . v).
    for (let a = 0; a < n; a++) {
      const va = v[a] / rest;
      for (let c = 0; c < n; c++) b[a * n + c] += va * v[c];
    }
  }
  return q;
}

/**
 * The inverse of a symmetric positive definite [n, n] matrix (Cholesky), as a new array.
 *
 * @example
 * ```ts
 * invertSpd(new Float64Array([4, 0, 0, 2]), 2); // [0.25, 0, 0, 0.5]
 * ```
 */
export function invertSpd(a: Float64Array, n: number): Float64Array {
  // l: lower Cholesky factor, a = l l^T.
  const l = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = a[i * n + j];
      for (let p = 0; p < j; p++) s -= l[i * n + p] * l[j * n + p];
      if (i === j) {
        if (!(s > 0)) throw new RangeError("Cannot invert: the matrix is not positive definite");
        l[i * n + i] = Math.sqrt(s);
      } else l[i * n + j] = s / l[j * n + j];
    }
  }
  // li = l^-1 (lower), then a^-1 = li^T li.
  const li = new Float64Array(n * n);
  for (let c = 0; c < n; c++) {
    li[c * n + c] = 1 / l[c * n + c];
    for (let i = c + 1; i < n; i++) {
      let s = 0;
      for (let p = c; p < i; p++) s -= l[i * n + p] * li[p * n + c];
      li[i * n + c] = s / l[i * n + i];
    }
  }
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = 0;
      for (let p = i; p < n; p++) s += li[p * n + i] * li[p * n + j];
      out[i * n + j] = out[j * n + i] = s;
    }
  }
  return out;
}

/** Geometry of a Conv's input for im2col rows. */
export interface ConvGeometry {
  /** Input channels (all groups), height, width. */
  channels: number;
  height: number;
  width: number;
  kernel: [number, number];
  strides: [number, number];
  /** [top, left, bottom, right]. */
  pads: [number, number, number, number];
  group: number;
}

/**
 * Appends im2col rows of one input x ([C, H, W]) at `positions` (output
 * pixels, oy * outW + ox) to `rows[g]`, one list per group; each row is
 * [C/g * kH * kW] in the weight's (c, ky, kx) order, zero where padded.
 *
 * @example
 * ```ts
 * const rows: number[][][] = [[]];
 * im2colRows(x, { channels: 3, height: 224, width: 224, kernel: [11, 11], strides: [4, 4],
 *   pads: [0, 0, 0, 0], group: 1 }, [0, 100], rows); // rows[0]: two rows of 363
 * ```
 */
export function im2colRows(
  x: Float32Array,
  geo: ConvGeometry,
  positions: number[],
  rows: number[][][],
): void {
  const { channels, height, width, kernel: [kh, kw], strides: [sh, sw], pads, group } = geo;
  const outW = Math.floor((width + pads[1] + pads[3] - kw) / sw) + 1;
  const cg = channels / group;
  for (const p of positions) {
    const oy = Math.floor(p / outW), ox = p % outW;
    for (let g = 0; g < group; g++) {
      const row = new Array<number>(cg * kh * kw).fill(0);
      for (let c = 0; c < cg; c++) {
        const plane = (g * cg + c) * height * width;
        for (let ky = 0; ky < kh; ky++) {
          const iy = oy * sh - pads[0] + ky;
          if (iy < 0 || iy >= height) continue;
          for (let kx = 0; kx < kw; kx++) {
            const ix = ox * sw - pads[1] + kx;
            if (ix >= 0 && ix < width) row[(c * kh + ky) * kw + kx] = x[plane + iy * width + ix];
          }
        }
      }
      rows[g].push(row);
    }
  }
}
