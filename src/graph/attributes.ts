/**
 * Node attribute readers, written once for every graph pass and kernel factory.
 * Each returns the fallback only when the attribute is absent (or carries no
 * value of that kind); int64 values (decoded as `Long` objects) come back as
 * numbers, exact up to 2^53.
 *
 * @module
 */
import type onnxProto from "onnx-proto";

type NodeProto = onnxProto.onnx.INodeProto;

/**
 * An int64 field's value as a number: protobufjs decodes int64 as a `Long` when the
 * `long` package is present, as a number otherwise, and hand-built protos hold numbers.
 *
 * @example
 * ```ts
 * toNumber(3); // 3
 * ```
 */
export function toNumber(x: unknown): number {
  if (typeof x === "number") return x;
  if (x && typeof x === "object" && "toNumber" in x) {
    return (x as { toNumber(): number }).toNumber();
  }
  return Number(x);
}

/**
 * The node's attribute called `name`, if it has one.
 *
 * @example
 * ```ts
 * import { node } from "./onnx.ts";
 *
 * attribute(node("Flatten", ["x"], ["y"], { axis: 1 }), "axis")?.i; // 1
 * ```
 */
export function attribute(
  node: NodeProto,
  name: string,
): onnxProto.onnx.IAttributeProto | undefined {
  return node.attribute?.find((a) => a.name === name) ?? undefined;
}

/**
 * An INT attribute (`group`, `axis`, `transB`, ...), or `fallback` when absent.
 *
 * @example
 * ```ts
 * import { node } from "./onnx.ts";
 *
 * intAttr(node("Conv", ["x", "w"], ["y"], { group: 2 }), "group", 1); // 2
 * ```
 */
export function intAttr(node: NodeProto, name: string, fallback: number): number {
  const i = attribute(node, name)?.i;
  return i === undefined || i === null ? fallback : toNumber(i);
}

/**
 * A FLOAT attribute (`alpha`, `beta`, ...), or `fallback` when absent.
 *
 * @example
 * ```ts
 * import { node } from "./onnx.ts";
 *
 * floatAttr(node("LRN", ["x"], ["y"], { size: 5 }), "alpha", 1e-4); // 1e-4
 * ```
 */
export function floatAttr(node: NodeProto, name: string, fallback: number): number {
  return attribute(node, name)?.f ?? fallback;
}

/**
 * An INTS attribute (`pads`, `strides`, `kernel_shape`, ...) as numbers; undefined when
 * absent. A present but empty list comes back empty: callers decide what that means.
 *
 * @example
 * ```ts
 * import { node } from "./onnx.ts";
 *
 * intsAttr(node("MaxPool", ["x"], ["y"], { strides: [2, 2] }), "strides"); // [2, 2]
 * ```
 */
export function intsAttr(node: NodeProto, name: string): number[] | undefined {
  return attribute(node, name)?.ints?.map(toNumber);
}

/**
 * A STRING attribute (`auto_pad`, ...) decoded as UTF-8; undefined when absent.
 *
 * @example
 * ```ts
 * import { node } from "./onnx.ts";
 *
 * stringAttr(node("Conv", ["x", "w"], ["y"], { auto_pad: "NOTSET" }), "auto_pad"); // "NOTSET"
 * ```
 */
export function stringAttr(node: NodeProto, name: string): string | undefined {
  const s = attribute(node, name)?.s;
  return s ? new TextDecoder().decode(s) : undefined;
}
