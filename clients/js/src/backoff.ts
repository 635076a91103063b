/** Reconnection delays: exponential backoff with jitter. */
export interface BackoffOptions {
  /** First delay, in ms. Default 1000. */
  delay?: number;
  /** Largest delay, in ms. Default 30000. */
  maxDelay?: number;
  /** Randomisation, from 0 (none) to 1: each delay is within ±jitter of its value. Default 0.5. */
  jitter?: number;
  /** Growth factor. Default 2. */
  factor?: number;
}

/** Exponential backoff with jitter: delay · factor^attempt, capped, ±jitter. */
export class Backoff {
  readonly delay: number;
  readonly maxDelay: number;
  readonly jitter: number;
  readonly factor: number;
  attempts = 0;
  private readonly random: () => number;

  constructor(options: BackoffOptions = {}, random: () => number = Math.random) {
    this.delay = Math.max(0, options.delay ?? 1000);
    this.maxDelay = Math.max(this.delay, options.maxDelay ?? 30_000);
    this.jitter = Math.min(1, Math.max(0, options.jitter ?? 0.5));
    this.factor = Math.max(1, options.factor ?? 2);
    this.random = random;
  }

  /** The next delay, in ms. */
  next(): number {
    const base = Math.min(this.maxDelay, this.delay * Math.pow(this.factor, this.attempts));
    this.attempts++;
    const spread = base * this.jitter * (2 * this.random() - 1);
    return Math.round(Math.min(this.maxDelay, Math.max(0, base + spread)));
  }

  reset(): void {
    this.attempts = 0;
  }
}
