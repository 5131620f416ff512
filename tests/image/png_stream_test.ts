import assert from "node:assert/strict";
import { decodePng } from "../../src/image/_codecs.ts";
import { decodePngStream, type PngScale } from "../../src/image/png_stream.ts";
import { scriptUnfilter, wasmUnfilter } from "../../src/image/_png_unfilter.ts";
import { reduceByBoxMean } from "../../src/image/_png_reduce_reference.ts";
import { decodeImage, PNG_STREAM_MIN_PIXELS, pngScaleFor } from "../../src/image/decode.ts";
import { ClassifierError } from "../../src/errors.ts";
import type { DecodedImage } from "../../src/image/mod.ts";
import type { PreprocessSpec } from "../../src/image/preprocess_spec.ts";
import { fixture, rng } from "./_util.ts";
import {
  concat,
  crc32,
  PNG_CHANNELS,
  pngChunk,
  pngData,
  type PngImage,
  randomPng,
  writePng,
} from "./_png_writer.ts";

const DEPTHS: Record<number, number[]> = {
  0: [1, 2, 4, 8, 16],
  2: [8, 16],
  3: [1, 2, 4, 8],
  4: [8, 16],
  6: [8, 16],
};

// Two bytes per sample, big-endian, as tRNS stores a grey or RGB key.
function keyOf(samples: Uint16Array, from: number, count: number): Uint8Array {
  const out = new Uint8Array(count * 2);
  for (let c = 0; c < count; c++) {
    out.set([samples[from + c] >> 8, samples[from + c] & 0xff], 2 * c);
  }
  return out;
}

// Every colour type x bit depth x interlacing, with and without tRNS (a key some pixels match,
// a palette's alphas), the data in small IDAT chunks so rows straddle inflated chunks.
function* everyKind(sizes: [number, number][], seed: number): Generator<[string, PngImage]> {
  const random = rng(seed);
  for (const [type, depths] of Object.entries(DEPTHS).map(([t, d]) => [Number(t), d] as const)) {
    for (const bitDepth of depths) {
      for (const interlaced of [false, true]) {
        for (const [width, height] of sizes) {
          for (const withTrns of [false, true]) {
            if (withTrns && (type === 4 || type === 6)) continue;
            const paletteSize = type === 3 ? Math.min(1 << bitDepth, 5 + (seed % 200)) : 0;
            const spec = { width, height, bitDepth, colorType: type, interlaced, idatSize: 7 };
            const img = randomPng(spec, random, paletteSize);
            if (type === 3) {
              img.palette = new Uint8Array(paletteSize * 3).map(() => random() * 256);
              if (withTrns) img.trns = new Uint8Array(paletteSize - 1).map(() => random() * 256);
            } else if (withTrns) img.trns = keyOf(img.samples, 0, PNG_CHANNELS[type]);
            const name = `type ${type} depth ${bitDepth} ${width}x${height}` +
              `${interlaced ? " interlaced" : ""}${withTrns ? " tRNS" : ""}`;
            yield [name, img];
          }
        }
      }
    }
  }
}

function assertSameImage(actual: DecodedImage, expected: DecodedImage, what: string): void {
  assert.deepStrictEqual([actual.width, actual.height], [expected.width, expected.height], what);
  const i = actual.data.findIndex((v, k) => v !== expected.data[k]);
  if (i >= 0 || actual.data.length !== expected.data.length) {
    const px = i >> 2;
    throw new Error(
      `${what}: first difference at pixel (${px % actual.width}, ${
        Math.floor(px / actual.width)
      }) channel ${i & 3}: ${actual.data[i]} vs ${expected.data[i]}`,
    );
  }
}

// Decoded pixels, or the fact that the decoder refused the file.
async function outcome(decode: Promise<DecodedImage>): Promise<DecodedImage | "refused"> {
  try {
    return await decode;
  } catch {
    return "refused";
  }
}

const PNG_FIXTURES = [
  "chelsea_animated_frame0.png",
  "coffee.png",
  "coffee_pillow_224.png",
  "fmt_png_gray.png",
  "fmt_png_gray_alpha16.png",
  "fmt_png_palette.png",
  "fmt_png_rgb16.png",
  "png_gray2.png",
  "png_interlaced_rgb.png",
  "png_palette_trns.png",
  "png_rgba16_interlaced.png",
  "offset_frame_ref.png",
];

Deno.test("png_stream at scale 1 equals imagescript's decoder on every PNG fixture", async () => {
  for (const name of PNG_FIXTURES) {
    const bytes = await fixture(name);
    assertSameImage(await decodePngStream(bytes), await decodePng(bytes), name);
  }
});

Deno.test("png_stream at scale 1 equals imagescript's decoder on every colour type, depth and interlacing", async () => {
  const sizes: [number, number][] = [[1, 1], [7, 3], [13, 9], [37, 21]];
  let n = 0;
  for (const [name, img] of everyKind(sizes, 1)) {
    const bytes = writePng(img);
    const expected = await decodePng(bytes);
    for (const unfilter of ["wasm", "script"] as const) {
      assertSameImage(
        await decodePngStream(bytes, { unfilter }),
        expected,
        `${name} (${unfilter})`,
      );
    }
    n++;
  }
  assert.deepStrictEqual(n, 4 * 2 * (5 * 2 + 2 * 2 + 4 * 2 + 2 + 2));
});

Deno.test("png_stream's reduced output equals a box mean over imagescript's full decode", async () => {
  const sizes: [number, number][] = [[1, 1], [9, 70], [37, 21], [64, 40]];
  for (const [name, img] of everyKind(sizes, 2)) {
    const bytes = writePng(img);
    const full = await decodePng(bytes);
    for (const f of [2, 4, 8] as PngScale[]) {
      const reduced = await decodePngStream(bytes, { scale: f });
      assertSameImage(reduced, reduceByBoxMean(full, f), `${name} at 1/${f}`);
      const script = await decodePngStream(bytes, { scale: f, unfilter: "script" });
      assertSameImage(script, reduced, `${name} at 1/${f} (script)`);
      assert.deepStrictEqual(reduced.reduction, {
        width: img.width,
        height: img.height,
        scale: f,
        left: 0,
        top: 0,
      });
    }
  }
  for (const name of PNG_FIXTURES) {
    const bytes = await fixture(name);
    const full = await decodePng(bytes);
    for (const f of [2, 4, 8] as PngScale[]) {
      assertSameImage(
        await decodePngStream(bytes, { scale: f }),
        reduceByBoxMean(full, f),
        `${name} at 1/${f}`,
      );
    }
  }
});

Deno.test("the decode module's row filters equal the TypeScript reference bit for bit", async () => {
  const random = rng(12);
  for (let bpp = 1; bpp <= 8; bpp++) {
    for (const n of [1, bpp, bpp + 1, 3 * bpp + 2, 257]) {
      const wasm = (await wasmUnfilter(300, bpp))!;
      const script = scriptUnfilter(300, bpp, 1);
      for (let row = 0; row < 40; row++) {
        if (row === 20) [wasm, script].forEach((r) => r.reset());
        const raw = new Uint8Array(n).map(() => random() * 256);
        // Rows of small values too, where Paeth's ties decide.
        if (row % 3 === 0) raw.forEach((v, i) => (raw[i] = v & 3));
        const type = row % 5;
        wasm.raw.set(raw);
        script.raw.set(raw);
        const [a, b] = [wasm.unfilter(type, n), script.unfilter(type, n)];
        assert.deepStrictEqual(a, b, `bpp ${bpp}, ${n} bytes, row ${row}, filter ${type}`);
      }
      assert.throws(() => wasm.unfilter(5, n), /bad filter type 5/);
    }
  }
});

Deno.test("16-bit rows unfiltered on their high bytes only keep those bytes exact", () => {
  const random = rng(13);
  const [all, high] = [scriptUnfilter(64, 8, 1), scriptUnfilter(64, 8, 2)];
  for (let row = 0; row < 30; row++) {
    const raw = new Uint8Array(64).map(() => random() * 256);
    all.raw.set(raw);
    high.raw.set(raw);
    const [a, b] = [all.unfilter(row % 5, 64), high.unfilter(row % 5, 64)];
    for (let i = 0; i < 64; i += 2) assert.equal(b[i], a[i], `row ${row} byte ${i}`);
  }
});

// Rewrites the CRC of the chunk at `at` so only the change inside it counts.
function fixCrc(b: Uint8Array, at: number): Uint8Array {
  const view = new DataView(b.buffer, b.byteOffset);
  const end = at + 8 + view.getUint32(at);
  if (end + 4 <= b.length) view.setUint32(end, crc32(b.subarray(at + 4, end)));
  return b;
}

const IHDR_AT = 8, IDAT_AT = 33;

function brokenFiles(): [string, Uint8Array][] {
  const img = randomPng({ width: 21, height: 13, bitDepth: 8, colorType: 6 }, rng(3));
  const good = writePng(img);
  const data = pngData(img);
  const flipped = (at: number) => good.map((v, i) => (i === at ? v ^ 1 : v));
  const header = good.subarray(0, IDAT_AT);
  const iend = pngChunk("IEND", new Uint8Array(0));
  const text = pngChunk("tEXt", new TextEncoder().encode("a\0b"));
  const grey = randomPng({ width: 3, height: 2, bitDepth: 8, colorType: 0 }, rng(4));
  const pal = randomPng({ width: 3, height: 2, bitDepth: 8, colorType: 3 }, rng(5), 3);
  return [
    ["IHDR CRC", flipped(IHDR_AT + 20)],
    ["IDAT CRC", flipped(good.length - 13)],
    ["IEND CRC (not checked)", flipped(good.length - 1)],
    [
      "ancillary CRC (not checked)",
      concat([
        header,
        text.map((v, i, a) => i === a.length - 1 ? v ^ 1 : v),
        good.subarray(IDAT_AT),
      ]),
    ],
    ["no IEND", good.subarray(0, good.length - 12)],
    ["data after IEND", concat([good, new Uint8Array([1, 2, 3])])],
    ["cut inside IDAT", good.subarray(0, good.length - 30)],
    ["cut inside the CRC", good.subarray(0, good.length - 14)],
    ["zlib stream cut short", writePng(img, data.subarray(0, data.length - 9))],
    ["bad Adler-32", writePng(img, data.map((v, i) => i === data.length - 1 ? v ^ 1 : v))],
    ["bytes after the zlib stream", writePng(img, concat([data, new Uint8Array([3, 0])]))],
    [
      "more rows than IHDR says",
      fixCrc(
        writePng({ ...img, height: 14, samples: new Uint16Array(21 * 14 * 4) }).map((
          v,
          i,
        ) => (i === IHDR_AT + 8 + 7 ? 13 : v)),
        IHDR_AT,
      ),
    ],
    ["filter type 5", writePng({ ...img, filters: [0, 5] })],
    [
      "unknown critical chunk",
      concat([header, pngChunk("ABCD", new Uint8Array([1])), good.subarray(IDAT_AT)]),
    ],
    [
      "unknown ancillary chunk",
      concat([header, pngChunk("abCD", new Uint8Array([1])), good.subarray(IDAT_AT)]),
    ],
    [
      "IDAT chunks split by tEXt",
      concat([
        header,
        pngChunk("IDAT", data.subarray(0, 9)),
        text,
        pngChunk("IDAT", data.subarray(9)),
        iend,
      ]),
    ],
    [
      "an empty IDAT first",
      concat([header, pngChunk("IDAT", new Uint8Array(0)), pngChunk("IDAT", data), iend]),
    ],
    ["no IDAT", concat([header, iend])],
    ["palette without PLTE", writePng(pal)],
    ["palette index past PLTE", writePng({ ...pal, palette: new Uint8Array([1, 2, 3, 4, 5, 6]) })],
    [
      "tRNS longer than PLTE",
      writePng({ ...pal, palette: new Uint8Array(9).fill(7), trns: new Uint8Array([1, 2, 3, 4]) }),
    ],
    ["grey tRNS of 1 byte", writePng({ ...grey, trns: new Uint8Array([1]) })],
    ["RGBA with tRNS", writePng({ ...img, trns: new Uint8Array(6) })],
    [
      "16-bit palette",
      fixCrc(
        writePng(grey).map((v, i) => (i === IHDR_AT + 16 ? 16 : i === IHDR_AT + 17 ? 3 : v)),
        IHDR_AT,
      ),
    ],
    [
      "compression method 1",
      fixCrc(writePng(grey).map((v, i) => (i === IHDR_AT + 18 ? 1 : v)), IHDR_AT),
    ],
    [
      "interlace method 2",
      fixCrc(writePng(grey).map((v, i) => (i === IHDR_AT + 20 ? 2 : v)), IHDR_AT),
    ],
  ];
}

Deno.test("png_stream refuses the broken files imagescript's decoder refuses, and decodes the rest alike", async () => {
  for (const [name, bytes] of brokenFiles()) {
    const ours = await outcome(decodePngStream(bytes));
    const theirs = await outcome(decodePng(bytes));
    if (ours === "refused" || theirs === "refused") {
      assert.deepStrictEqual([ours === "refused", theirs === "refused"], [true, true], name);
    } else assertSameImage(ours, theirs, name);
  }
});

Deno.test("png_stream agrees with imagescript's decoder on mutated files", async () => {
  const random = rng(7);
  const img = randomPng(
    { width: 30, height: 17, bitDepth: 8, colorType: 2, interlaced: true },
    random,
  );
  const good = writePng({ ...img, idatSize: 100 });
  for (let k = 0; k < 300; k++) {
    const bytes = good.slice(0, k % 3 === 0 ? Math.floor(random() * good.length) : good.length);
    const at = Math.floor(random() * bytes.length);
    bytes[at] ^= 1 << Math.floor(random() * 8);
    // Half the time the enclosing IDAT's CRC is fixed, so the zlib stream itself is tested.
    if (k % 2 === 1 && at >= IDAT_AT) {
      fixCrc(bytes, IDAT_AT + 112 * Math.floor((at - IDAT_AT) / 112));
    }
    const ours = await outcome(decodePngStream(bytes));
    const theirs = await outcome(decodePng(bytes));
    const what = `mutation ${k} (byte ${at})`;
    if (ours === "refused" || theirs === "refused") {
      assert.deepStrictEqual([ours === "refused", theirs === "refused"], [true, true], what);
    } else assertSameImage(ours, theirs, what);
  }
});

const SPEC: PreprocessSpec = {
  width: 224,
  height: 224,
  resize: { mode: "shorter_side", size: 256 },
  channelOrder: "RGB",
  scale: 1 / 255,
  mean: [0.485, 0.456, 0.406],
  std: [0.229, 0.224, 0.225],
};

Deno.test("decodeImage decodes a large PNG reduced when fitFor allows, equal to the reference", async () => {
  const img = randomPng({ width: 1500, height: 1100, bitDepth: 8, colorType: 2 }, rng(9));
  const bytes = writePng(img);
  assert.deepStrictEqual(pngScaleFor(1500, 1100, SPEC), 2);
  const reduced = await decodeImage(bytes, { fitFor: SPEC });
  assertSameImage(reduced, reduceByBoxMean(await decodePng(bytes), 2), "1500x1100 at 1/2");
  assert.deepStrictEqual(reduced.reduction?.scale, 2);
  // Too small to reduce: imagescript's decode, full size.
  assert.deepStrictEqual(
    (await decodeImage(await fixture("coffee.png"), { fitFor: SPEC })).reduction,
    undefined,
  );
});

Deno.test("decodeImage decodes a PNG from PNG_STREAM_MIN_PIXELS at full size as imagescript does", async () => {
  const width = 1000, height = Math.ceil(PNG_STREAM_MIN_PIXELS / width);
  const img = randomPng({ width, height, bitDepth: 8, colorType: 6, interlaced: true }, rng(14));
  const bytes = writePng(img);
  const streamed = await decodeImage(bytes);
  assert.equal(streamed.reduction, undefined);
  assertSameImage(streamed, await decodePng(bytes), `${width}x${height}`);
  // One row fewer: imagescript's own decode (the same pixels, so only the path differs).
  const small = writePng({ ...img, height: height - 1 });
  assertSameImage(await decodeImage(small), await decodePng(small), "just under");
});

Deno.test("decodeImage gives a reduced PNG's broken data the same 422 as the full decoder", async () => {
  const img = randomPng({ width: 1500, height: 1100, bitDepth: 8, colorType: 6 }, rng(10));
  const good = writePng(img);
  const corrupt = good.slice();
  for (let i = 2000; i < 3000; i++) corrupt[i] ^= 0x5a;
  const cases = [good.subarray(0, good.length - 5000), corrupt, fixCrc(corrupt.slice(), IDAT_AT)];
  for (const bytes of cases) {
    const full = await decodeImage(bytes, { decoder: "full" }).catch((e) => e);
    const fast = await decodeImage(bytes, { fitFor: SPEC }).catch((e) => e);
    assert.deepStrictEqual(fast instanceof ClassifierError, true);
    assert.deepStrictEqual([fast.code, fast.message], [full.code, full.message]);
  }
});

Deno.test("png_stream stops with the signal's reason once it is aborted", async () => {
  const bytes = writePng(
    randomPng({ width: 300, height: 300, bitDepth: 8, colorType: 6 }, rng(11)),
  );
  const reason = new Error("stop");
  const controller = new AbortController();
  controller.abort(reason);
  await assert.rejects(
    decodePngStream(bytes, { scale: 2, signal: controller.signal }),
    (e) => e === reason,
  );
});
