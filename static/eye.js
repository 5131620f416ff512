// The model's-eye view: the image resized and cropped as the model's manifest says, drawn by the
// browser (EXIF orientation applied by createImageBitmap), and the input tensor read back from it.

/** Python's round(): halves go to the even neighbour, as in torchvision's center crop. */
const pyRound = (x) => {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
};

/**
 * Draws `file` into `canvas` as the model sees it (preprocessing `p` from GET v1/models).
 * Returns what was done, for a caption. Throws when the browser cannot decode the file.
 */
export async function drawModelsEye(canvas, file, p) {
  const bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
  const { width: w0, height: h0 } = bitmap;
  let rw = p.width, rh = p.height, left = 0, top = 0;
  if (p.resize?.mode === "shorter_side") {
    const size = p.resize.size;
    // torchvision Resize(size): the shorter side becomes size, the other int(size * long / short).
    if (w0 <= h0) [rw, rh] = [size, Math.floor((size * h0) / w0)];
    else [rw, rh] = [Math.floor((size * w0) / h0), size];
    left = pyRound((rw - p.width) / 2);
    top = pyRound((rh - p.height) / 2);
  }
  canvas.width = p.width;
  canvas.height = p.height;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.fillStyle = "#000"; // A crop larger than the image pads with 0, as on the server.
  ctx.fillRect(0, 0, p.width, p.height);
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(bitmap, -left, -top, rw, rh);
  bitmap.close();
  return { source: [w0, h0], resized: [rw, rh], crop: p.resize?.mode === "shorter_side" };
}

/** One caption line for what drawModelsEye did. */
export function describeEye({ source, resized, crop }, p) {
  const size = `${p.width}×${p.height}`;
  return crop
    ? `${source.join("×")} resized to ${resized.join("×")}, centre ${size} cropped.`
    : `${source.join("×")} resized straight to ${size}, no crop.`;
}

/**
 * The model input x: [1, 3, H, W] from the canvas: (p * scale - mean[c]) / std[c], mean and std
 * in RGB order, channels then written in the manifest's order.
 */
export function inputTensor(canvas, p) {
  const { width: w, height: h } = canvas;
  const { data } = canvas.getContext("2d", { willReadFrequently: true }).getImageData(0, 0, w, h);
  const plane = w * h;
  const out = new Float32Array(3 * plane);
  const order = p.channelOrder === "BGR" ? [2, 1, 0] : [0, 1, 2];
  order.forEach((c, ch) => {
    const a = p.scale / p.std[c], b = -p.mean[c] / p.std[c];
    for (let i = 0, o = ch * plane; i < plane; i++) out[o + i] = data[i * 4 + c] * a + b;
  });
  return out;
}
