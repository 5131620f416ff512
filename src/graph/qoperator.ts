/**
 * QOperator int8 graphs (QLinearConv, QLinearMatMul + com.microsoft QLinearAdd, uint8
 * MaxPool/Reshape between them: what Intel Neural Compressor wrote for the ONNX Model
 * Zoo's bvlcalexnet-12-int8) rewritten at load into the QDQ layout our int8 kernels
 * take whole (src/runtime/qdq_ops.ts):
 *
 *   x_q -> QLinearConv(W, B) -> y_q       becomes   x -> Q -> DQ -> Conv(DQ(W), DQ(B)) -> y
 *   a_q -> QLinearMatMul(B[K,N]) -> QLinearAdd(bias_q) -> c_q
 *                                         becomes   a -> Q -> DQ -> Gemm(DQ(B^T), bias, transB)
 *
 * Every uint8 tensor t_q = Q(v, s, z) of the original is carried as the float v before
 * its rounding ("pending"), and the rounding happens where onnxruntime does it: in the
 * QuantizeLinear our next int8 layer absorbs. MaxPool, Relu and Reshape/Flatten commute
 * with that rounding (it is monotone), so they run on v. Where a float op needs DQ(t_q)
 * itself (LRN, Softmax, a graph output), an identity layer does the rounding: a QDQ
 * depthwise 1x1 Conv with weight 1 and scale 1 (4-D), or a QDQ Gemm by the identity
 * (2-D), whose output f32(q - z) * s is exactly DequantizeLinear's.
 *
 * Two roundings are not kept by default (`exact` keeps them, at a cost): QLinearMatMul
 * rounds its product to uint8 before QLinearAdd adds the bias and rounds again, where the
 * Gemm adds the bias in float and rounds once; and a conv output read by LRN goes there
 * unrounded (through a ReLU, as its zero point 0 clamp would; not clipped at 255 steps).
 * So some fc outputs differ from onnxruntime's by a step or two, and a few activations
 * after the LRNs by one. With `exact`, every tensor holds onnxruntime's integers except
 * at near-ties of the requantization (about one activation in a million): onnxruntime
 * scales the int32 sum plus bias by one float (s_x s_w / s_y), our kernels scale the sum,
 * add the bias in float, then divide. Measured in BENCHMARKS.md, "QOperator int8 on our
 * kernels".
 *
 * Anything else (int8 activations, weight zero points other than 0 or 128, QLinearAdd
 * of two activations, unknown ops on uint8 tensors) leaves the model untouched, and
 * onnxruntime runs it; the returned reason says why.
 *
 * @module
 */
import type onnxProto from "onnx-proto";
import { decodeModel, onnx } from "./onnx.ts";
import { QdqWriter, QOPERATOR_OPS, Unsupported } from "./_qdq_writer.ts";

/** Options of {@linkcode rewriteQOperator}. */
export interface QOperatorOptions {
  /**
   * Keep every rounding onnxruntime does, with identity layers: of a conv's output
   * before a float op reads it (LRN; a depthwise 1x1 Conv, slow on our grouped conv
   * path), and of QLinearMatMul's product before QLinearAdd adds the bias (an N x N
   * Gemm per fc layer: 34 MB for AlexNet). AlexNet then takes 101 instead of 76 ms
   * (BENCHMARKS.md, "QOperator int8 on our kernels"). Default false: those tensors go
   * on unrounded (a ReLU does what the zero point 0 clamp did), which moves some
   * activations by a step or more. The 2-D rounding before Softmax or a graph output
   * is always kept (one 1000 x 1000 identity: 1 MB, 0.5 ms).
   */
  exact?: boolean;
  /**
   * The caller gives `bytes` away (it will not read them again): the fc weights are
   * transposed inside them instead of into a copy, which saves their size (58 MB for
   * AlexNet) at the load's peak. Default false. Nothing is changed when the rewrite
   * falls back.
   */
  inPlace?: boolean;
}

/** Result of {@linkcode rewriteQOperator}. */
export interface QOperatorRewrite {
  /** The QDQ model, or the input bytes themselves when nothing was rewritten. */
  bytes: Uint8Array;
  /** Whether `bytes` is a rewritten model. */
  rewritten: boolean;
  /** Why not, when the model is QOperator but could not be rewritten. */
  reason?: string;
  /** Identity layers added to round a tensor that a float op reads (count). */
  identities?: number;
}

/**
 * Whether a model holds QOperator int8 nodes (QLinearConv, QLinearMatMul, ...).
 *
 * @example
 * ```ts
 * import { isQOperator } from "./qoperator.ts";
 * import { buildAlexNet } from "../model/alexnet.ts";
 *
 * isQOperator(buildAlexNet({ inputSize: 67 })); // false
 * ```
 */
export function isQOperator(bytes: Uint8Array): boolean {
  return hasQOperatorNodes(decodeModel(bytes).graph);
}

function hasQOperatorNodes(graph: onnxProto.onnx.IGraphProto | null | undefined): boolean {
  return (graph?.node ?? []).some((n) => QOPERATOR_OPS.has(n.opType ?? ""));
}

/**
 * Rewrites a QOperator int8 model into the QDQ layout our int8 kernels run whole;
 * returns the input bytes untouched (with a reason) for what it does not understand,
 * and for models that are not QOperator (no reason).
 *
 * @example
 * ```ts
 * import { rewriteQOperator } from "./qoperator.ts";
 *
 * const bytes = await Deno.readFile("models/bvlcalexnet-12-int8.onnx");
 * const { bytes: qdq, rewritten, reason } = rewriteQOperator(bytes);
 * console.log(rewritten ? "runs on our int8 kernels" : `stays on onnxruntime: ${reason}`);
 * ```
 */
export function rewriteQOperator(
  bytes: Uint8Array,
  options: QOperatorOptions = {},
): QOperatorRewrite {
  const started = startRewrite(bytes, options);
  if (!("next" in started)) return started;
  try {
    let step = started.next();
    while (!step.done) step = started.next();
    return { ...step.value, rewritten: true };
  } catch (e) {
    if (!(e instanceof Unsupported)) throw e;
    return { bytes, rewritten: false, reason: e.message };
  }
}

/**
 * {@linkcode rewriteQOperator} giving the event loop a turn between its long steps (the
 * fc weight transposes, the encoding: a few hundred ms each for AlexNet), so a server
 * loading a model keeps answering /healthz.
 *
 * @example
 * ```ts
 * import { rewriteQOperatorAsync } from "./qoperator.ts";
 *
 * const { rewritten } = await rewriteQOperatorAsync(await Deno.readFile("model.onnx"));
 * ```
 */
export async function rewriteQOperatorAsync(
  bytes: Uint8Array,
  options: QOperatorOptions = {},
): Promise<QOperatorRewrite> {
  const started = startRewrite(bytes, options);
  if (!("next" in started)) return started;
  try {
    let step = started.next();
    while (!step.done) {
      await new Promise((resolve) => setTimeout(resolve, 0));
      step = started.next();
    }
    return { ...step.value, rewritten: true };
  } catch (e) {
    if (!(e instanceof Unsupported)) throw e;
    return { bytes, rewritten: false, reason: e.message };
  }
}

/** The rewrite's steps for a QOperator model; the final result for any other. */
function startRewrite(
  bytes: Uint8Array,
  options: QOperatorOptions,
): QOperatorRewrite | Generator<void, { bytes: Uint8Array; identities: number }> {
  let model: onnxProto.onnx.ModelProto;
  try {
    model = decodeModel(bytes);
  } catch {
    return { bytes, rewritten: false }; // not ONNX: whoever loads it next says so
  }
  const graph = model.graph;
  if (!graph || !hasQOperatorNodes(graph)) return { bytes, rewritten: false };
  return rewriteGraph(model, options);
}

/**
 * Checks and rewrites the graph (throwing Unsupported before anything changes), then
 * yields after each fc transpose and before encoding.
 */
function* rewriteGraph(
  model: onnxProto.onnx.ModelProto,
  options: QOperatorOptions,
): Generator<void, { bytes: Uint8Array; identities: number }> {
  const graph = model.graph!;
  const inits = new Map((graph.initializer ?? []).map((t) => [t.name!, t]));
  const writer = new QdqWriter(graph, inits, options);
  for (const n of graph.node ?? []) writer.visit(n);
  writer.roundGraphOutputs(graph.output ?? []);
  for (const run of writer.transposes) {
    yield;
    run();
  }
  yield;
  return { bytes: encodeRewritten(model, inits, writer), identities: writer.identities };
}

/** The new graph: the original's initializers still read, the writer's nodes and tensors. */
function encodeRewritten(
  model: onnxProto.onnx.ModelProto,
  inits: Map<string, onnxProto.onnx.ITensorProto>,
  writer: QdqWriter,
): Uint8Array {
  const graph = model.graph!;
  const used = new Set(writer.out.flatMap((n) => n.input ?? []));
  const initializer = [
    ...(graph.initializer ?? []).filter((t) => used.has(t.name!)),
    ...writer.added,
  ];
  const initNames = new Set(initializer.map((t) => t.name!));
  const rewritten = onnx.ModelProto.create({
    irVersion: Math.max(Number(model.irVersion ?? 7), 7),
    producerName: `${model.producerName ?? ""} + alexnet-edge qoperator`,
    // Per-axis DequantizeLinear needs opset 13.
    opsetImport: [
      ...(model.opsetImport ?? []).filter((o) => (o.domain ?? "") !== ""),
      { domain: "", version: Math.max(13, defaultOpset(model)) },
    ],
    graph: {
      name: graph.name,
      node: writer.out,
      initializer,
      // Old IR versions list initializers as inputs too: keep only real inputs.
      input: (graph.input ?? []).filter((v) => !inits.has(v.name!) || initNames.has(v.name!)),
      output: graph.output,
    },
  });
  return onnx.ModelProto.encode(rewritten).finish();
}

function defaultOpset(model: onnxProto.onnx.ModelProto): number {
  const o = (model.opsetImport ?? []).find((x) => (x.domain ?? "") === "");
  return Number(o?.version ?? 13);
}

/**
 * The model as our int8 kernels take it: a QOperator file rewritten to QDQ, anything
 * else as it is. Says on `log` what happened to a QOperator file, and why not when
 * onnxruntime keeps it.
 *
 * @example
 * ```ts
 * import { forInt8Kernels } from "./qoperator.ts";
 *
 * const file = await Deno.readFile("models/bvlcalexnet-12-int8.onnx");
 * const bytes = await forInt8Kernels(file, console.log);
 * ```
 */
export async function forInt8Kernels(
  bytes: Uint8Array,
  log?: (line: string) => void,
  options: Pick<QOperatorOptions, "inPlace"> = {},
): Promise<Uint8Array> {
  const start = performance.now();
  let result: QOperatorRewrite;
  try {
    result = await rewriteQOperatorAsync(bytes, options);
  } catch (e) {
    // A malformed file or a bug here must not stop onnxruntime from trying it.
    result = { bytes, rewritten: false, reason: `the rewrite failed (${(e as Error).message})` };
  }
  const ms = (performance.now() - start).toFixed(0);
  if (result.rewritten) {
    log?.(
      `QOperator int8 model rewritten to QDQ for our int8 kernels in ${ms} ms ` +
        `(${result.identities} identity layers round tensors that float ops read)`,
    );
  } else if (result.reason) {
    log?.(
      `Cannot run the QOperator int8 model on our kernels: ${result.reason}; ` +
        "onnxruntime-web runs it",
    );
  }
  return result.bytes;
}
