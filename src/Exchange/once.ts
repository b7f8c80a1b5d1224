import { Deferred, Effect, Option, Ref, type Scope } from "effect"

/**
 * Wraps `effect` so that concurrent callers share one run: whoever arrives while a run is in flight awaits its result
 * (success or failure); the next caller after it finished starts a new run. The run is forked into the current scope,
 * so an interrupted caller does not abort it for the others.
 */
export const singleFlight = <A, E>(
  effect: Effect.Effect<A, E>
): Effect.Effect<Effect.Effect<A, E>, never, Scope.Scope> =>
  Effect.gen(function* () {
    const scope = yield* Effect.scope
    const inflight = yield* Ref.make(Option.none<Deferred.Deferred<A, E>>())
    return Effect.uninterruptibleMask((restore) =>
      Effect.gen(function* () {
        const fresh = yield* Deferred.make<A, E>()
        const [current, started] = yield* Ref.modify(
          inflight,
          (slot): readonly [readonly [Deferred.Deferred<A, E>, boolean], Option.Option<Deferred.Deferred<A, E>>] =>
            Option.isSome(slot) ? [[slot.value, false], slot] : [[fresh, true], Option.some(fresh)]
        )
        if (started) {
          yield* Effect.interruptible(effect).pipe(
            Effect.onExit((exit) => Ref.set(inflight, Option.none()).pipe(Effect.zipRight(Deferred.done(fresh, exit)))),
            Effect.forkIn(scope)
          )
        }
        return yield* restore(Deferred.await(current))
      })
    )
  })

/** A value computed on first use and kept once it succeeded; failures are shared by concurrent callers, never kept. */
export interface Memo<A, E> {
  /** The kept value, or a (shared) run of the acquisition. */
  readonly get: Effect.Effect<A, E>
  /** A fresh run (shared with concurrent reloads); on success it replaces the kept value. */
  readonly reload: Effect.Effect<A, E>
  readonly peek: Effect.Effect<Option.Option<A>>
}

export const makeMemo = <A, E>(acquire: Effect.Effect<A, E>): Effect.Effect<Memo<A, E>, never, Scope.Scope> =>
  Effect.gen(function* () {
    const value = yield* Ref.make(Option.none<A>())
    const run = Effect.tap(acquire, (a) => Ref.set(value, Option.some(a)))
    // re-checked inside the shared run: a caller may have seen None just before another run stored its value
    const first = yield* singleFlight(
      Effect.flatMap(Ref.get(value), Option.match({ onNone: () => run, onSome: Effect.succeed }))
    )
    const reload = yield* singleFlight(run)
    const get = Effect.flatMap(Ref.get(value), Option.match({ onNone: () => first, onSome: Effect.succeed }))
    return { get, reload, peek: Ref.get(value) }
  })
