// The machine's floating-point peak, measured (not looked up): the native addon's register-only
// FMA loop when it has one, else nothing (the table then shows no "% of peak" column values).
import { loadNativeBackend } from "../src/backend/native.js";

export interface Peak { gflops1: number; gflopsAll: number; threads: number }

export function measurePeak(): Peak | null {
  const b = loadNativeBackend() as unknown as { peakGflops?: (threads: number) => number; threads?: number } | null;
  if (!b?.peakGflops) return null;
  const threads = b.threads ?? 2;
  return { gflops1: b.peakGflops(1), gflopsAll: b.peakGflops(threads), threads };
}
