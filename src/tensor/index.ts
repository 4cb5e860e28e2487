// The tensor engine's public surface: the Tensor class, creation, the op set and autodiff.
export { Tensor, type TensorLike } from "./tensor.js";
export type { DType, Storage } from "./dtype.js";
export { ShapeError, type Shape, broadcastShapes, numel } from "./shape.js";
export { Rng, manualSeed, defaultRng } from "./rng.js";
export { tensor, zeros, ones, full, arange, eye, randn, rand, randint, multinomial } from "./create.js";
export { noGrad, withGrad, isGradEnabled, backward, grad, type BackwardOptions } from "./autodiff.js";
export { add, sub, mul, div, pow, maximum, minimum, compare, unary, cast, where } from "./ops/elementwise.js";
export { sum, mean, max, min, argmax, logsumexp, variance, sumTo } from "./ops/reduce.js";
export { alias, reshape, permute, transpose, expand, squeeze, unsqueeze, slice, select, contiguous, indexSelect, gather, concat, stack, split } from "./ops/movement.js";
export { matmul, linear } from "./ops/linalg.js";
export { einsum } from "./ops/einsum.js";
export { softmax, causalSoftmax, logSoftmax, layerNorm, rmsNorm, embedding, crossEntropy } from "./ops/nn.js";
export { causalAttention, type CausalAttentionOptions } from "./ops/attention.js";
export { topk } from "./ops/topk.js";
export { jumpRelu, heavisideStep, topkMask, topKIndices } from "./ops/sparse.js";
export { scope, keep, pin, unscoped, setPoolLimit, poolStats } from "./memory.js";
