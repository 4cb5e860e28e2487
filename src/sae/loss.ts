// The training objectives, one per activation, each the sum of a reconstruction term and a sparsity
// term (and AuxK for TopK):
//   relu:     ‖y − ŷ‖² + λ Σ_i f_i ‖W_dec,i‖₂   (Anthropic's April 2024 update; SAELens "standard")
//   jumprelu: ‖y − ŷ‖² + λ Σ_i H(π_i − θ_i)     (L0 through the step's pseudo-derivative; Rajamanoharan et al. 2024)
//   topk:     ‖y − ŷ‖² + α ‖e − ê_aux‖²          (AuxK: the top k_aux dead latents reconstruct the residual e; Gao et al. 2024, α = 1/32)
// Squared errors are summed over the output width and averaged over tokens, as SAELens does.
import { heavisideStep, topkMask } from "../tensor/ops/sparse.js";
import { Tensor } from "../tensor/tensor.js";
import type { SparseAutoencoder } from "./model.js";

export interface SaeLossOptions {
  /** λ of the L1 (relu) or L0 (jumprelu) penalty, after any warm-up. */
  sparsityCoefficient: number;
  /** JumpReLU's kernel width ε (default 0.001). */
  bandwidth?: number;
  /** TopK: 1 for latents counted dead, 0 otherwise ([d_sae]); AuxK is skipped when none are dead. */
  deadMask?: Tensor | null;
  /** AuxK's k (default d_in / 2, as SAELens) and its coefficient α (default 1/32). */
  auxK?: number;
  auxCoefficient?: number;
}

export interface SaeLossParts {
  loss: Tensor;
  mse: Tensor;        // mean over tokens of Σ_d (ŷ − y)²
  sparsity: Tensor;   // the penalty before its coefficient (0 for topk)
  aux: Tensor | null; // AuxK before α
  acts: Tensor;       // f [tokens, d_sae]
  recon: Tensor;      // ŷ [tokens, d_out]
}

/** The objective on x [tokens, d_in] with target y [tokens, d_out] (y = x for an SAE). */
export function saeLoss(sae: SparseAutoencoder, x: Tensor, y: Tensor, o: SaeLossOptions): SaeLossParts {
  const bandwidth = o.bandwidth ?? 0.001;
  const pre = sae.preacts(x);
  const acts = sae.activate(pre, bandwidth);
  const dec = sae.decode(acts), skip = sae.skipOf(x);
  const recon = skip ? dec.add(skip) : dec;
  const mse = recon.sub(y).square().sum(-1).mean();
  let sparsity: Tensor, aux: Tensor | null = null;
  switch (sae.cfg.activation) {
    case "relu": sparsity = acts.mul(sae.decoderNorms()).sum(-1).mean(); break;
    case "jumprelu": sparsity = heavisideStep(pre, sae.threshold!, bandwidth).sum(-1).mean(); break;
    case "topk": {
      sparsity = mse.mul(0);
      const dead = o.deadMask;
      const nDead = dead ? dead.sum().item() : 0;
      if (dead && nDead > 0) {
        const kAux = Math.min(o.auxK ?? Math.max(1, Math.floor(sae.cfg.d_in / 2)), nDead);
        // Only dead latents compete: live ones are pushed far below.
        const masked = pre.detach().add(dead.sub(1).mul(1e30));
        const fAux = pre.relu().mul(topkMask(masked, kAux)).mul(dead);
        const residual = y.sub(recon).detach();
        const scale = Math.min(nDead / kAux, 1);
        aux = fAux.matmul(sae.W_dec).sub(residual).square().sum(-1).mean().mul(scale);
      }
      break;
    }
    default: return sae.cfg.activation satisfies never;
  }
  let loss = mse.add(sparsity.mul(o.sparsityCoefficient));
  if (aux) loss = loss.add(aux.mul(o.auxCoefficient ?? 1 / 32));
  return { loss, mse, sparsity, aux, acts, recon };
}
