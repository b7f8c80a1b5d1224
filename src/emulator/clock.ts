/** The model clock: live (follows wall time from a start instant) or frozen (moves only when told to). */

export type ClockMode = "live" | "frozen"

export class Clock {
  private base: number
  private wallAtBase: number

  constructor(
    readonly mode: ClockMode,
    startTime: number,
    private readonly wall: () => number = Date.now
  ) {
    this.base = startTime
    this.wallAtBase = wall()
  }

  get frozen(): boolean {
    return this.mode === "frozen"
  }

  now(): number {
    return this.mode === "frozen" ? this.base : this.base + (this.wall() - this.wallAtBase)
  }

  setTime(ms: number): void {
    this.base = ms
    this.wallAtBase = this.wall()
  }

  advance(ms: number): void {
    this.setTime(this.now() + ms)
  }
}
