/**
 * AlexNet's names and size, apart from its builder (alexnet.ts): the server needs them at
 * start-up, the builder (and the ONNX code it brings) only to write a synthetic model.
 *
 * @module
 */

/** Input tensor name of the zoo's bvlcalexnet (and ours). */
export const ALEXNET_INPUT = "data_0";
/** Output tensor name of the zoo's bvlcalexnet (and ours): softmax probabilities. */
export const ALEXNET_OUTPUT = "softmaxout_1";
/** Learned parameters in the paper's AlexNet. */
export const ALEXNET_PARAMETERS = 60_965_224;
