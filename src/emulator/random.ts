/** Counter-based hashing and a small seeded PRNG: every random draw of the model is addressed by integers. */

const TWO_POW_32 = 4294967296

/** murmur3 finaliser: a bijective 32-bit avalanche mix. */
export const mix32 = (value: number): number => {
  let h = value | 0
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/** Hash of up to four 32-bit integers (values beyond 32 bits wrap, which stays deterministic). */
export const hash = (a: number, b: number, c = 0, d = 0): number => {
  let h = mix32(a ^ 0x9e3779b9)
  h = mix32(h ^ Math.imul(b | 0, 0x85ebca6b) ^ 0x27d4eb2f)
  h = mix32(h ^ Math.imul(c | 0, 0xc2b2ae35) ^ 0x165667b1)
  h = mix32(h ^ Math.imul(d | 0, 0x27d4eb2f) ^ 0x61c88647)
  return h
}

/** Uniform in [0, 1) derived from a hash. */
export const unit = (h: number): number => h / TWO_POW_32

/** Standard normal from two hashed uniforms (Box-Muller); used only for rare, one-off draws. */
export const normalFromHash = (h: number): number => {
  const u1 = (mix32(h) + 1) / (TWO_POW_32 + 1)
  const u2 = unit(mix32(h ^ 0x5bd1e995))
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2)
}

/** xorshift32 seeded through the murmur mix: very cheap per draw; each stream only lives for a minute or a day. */
export class Rng {
  private state: number

  constructor(seed: number) {
    this.state = mix32(seed) | 1
  }

  /** Uniform 32-bit unsigned integer; callers split its bits when one draw can serve several decisions. */
  nextUint32(): number {
    let x = this.state
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    this.state = x
    return x >>> 0
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.nextUint32() * INV_TWO_POW_32
  }

  /** Zero-mean, unit-variance uniform increment; the walk only needs the first two moments per step. */
  increment(): number {
    return (this.nextUint32() * INV_TWO_POW_32 - 0.5) * 3.4641016151377544
  }
}

const INV_TWO_POW_32 = 1 / TWO_POW_32

/** Cumulative Poisson(lambda) thresholds for 0…cap, scaled to 32-bit integers for {@link drawFromThresholds}. */
export const poissonThresholds = (lambda: number, cap: number): ReadonlyArray<number> => {
  const table: number[] = []
  let p = Math.exp(-lambda)
  let cumulative = 0
  for (let k = 0; k < cap; k++) {
    cumulative += p
    table.push(Math.min(TWO_POW_32, Math.floor(cumulative * TWO_POW_32)))
    p *= lambda / (k + 1)
  }
  table.push(TWO_POW_32)
  return table
}

/** Index of the first threshold above a uniform 32-bit draw. */
export const drawFromThresholds = (raw: number, thresholds: ReadonlyArray<number>): number => {
  let k = 0
  while (raw >= (thresholds[k] ?? TWO_POW_32)) k += 1
  return k
}
