// The machine's floating-point peak, measured (not looked up): the native addon's register-only
// FMA loop (native/src/peak.c) on one core and on every core; null without the addon or AVX2/FMA.
import { nativePeakGflops, nativeThreads } from "../src/backend/native.js";

export interface Peak { gflops1: number; gflopsAll: number; threads: number }

export function measurePeak(): Peak | null {
  const threads = nativeThreads();
  if (threads === 0) return null;
  const one = nativePeakGflops(1);
  if (!(one > 0)) return null;
  return { gflops1: one, gflopsAll: nativePeakGflops(threads), threads };
}
