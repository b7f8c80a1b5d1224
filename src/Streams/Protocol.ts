import { Either, ParseResult, Schema } from "effect"
import { InvalidParameter } from "../Domain/Errors.js"
import type { StreamChannel } from "../Exchange/Exchange.js"
import { depthParam, ExchangeParam, IntervalParam, SymbolParam, ThresholdParam, withMessage } from "../Domain/Params.js"
import type { SubscriptionRequest } from "./StreamHub.js"
import { MAX_STREAM_DEPTH } from "./Upstream.js"

export const STREAM_CHANNELS: ReadonlyArray<StreamChannel> = ["ticker", "trades", "orderbook", "ohlcv"]

const Channel = withMessage(
  Schema.Literal("ticker", "trades", "orderbook", "ohlcv"),
  "channel must be one of ticker, trades, orderbook, ohlcv",
  { override: true }
)

const Depth = depthParam(MAX_STREAM_DEPTH)

const RequestId = withMessage(
  Schema.Union(Schema.String.pipe(Schema.maxLength(64)), Schema.Number),
  "id must be a number or a string of at most 64 characters",
  { override: true }
)

export const SubscribeMessage = Schema.Struct({
  op: Schema.Literal("subscribe"),
  channel: Channel,
  exchange: ExchangeParam,
  symbol: SymbolParam,
  threshold: Schema.optional(ThresholdParam),
  depth: Schema.optional(Depth),
  interval: Schema.optional(IntervalParam),
  id: Schema.optional(RequestId)
})

export const UnsubscribeMessage = Schema.Struct({
  op: Schema.Literal("unsubscribe"),
  channel: Channel,
  exchange: ExchangeParam,
  symbol: SymbolParam,
  interval: Schema.optional(IntervalParam),
  id: Schema.optional(RequestId)
})

export const PingMessage = Schema.Struct({ op: Schema.Literal("ping"), id: Schema.optional(RequestId) })

/** Every message a client may send over /ws, as JSON text. */
export const ClientMessage = Schema.parseJson(Schema.Union(SubscribeMessage, UnsubscribeMessage, PingMessage))
export type ClientMessage = typeof ClientMessage.Type

const decodeOp = Schema.decodeUnknownEither(Schema.parseJson(Schema.Struct({ op: Schema.String })))
const decodeClientMessage = Schema.decodeUnknownEither(ClientMessage)

const firstIssue = (error: ParseResult.ParseError): string => {
  const issue = ParseResult.ArrayFormatter.formatErrorSync(error)[0]
  if (issue === undefined) return "invalid message"
  const field = issue.path.map(String).join(".")
  return field === "" ? issue.message : issue.message === "is missing" ? `${field} is missing` : issue.message
}

/** A client message, or why it is not one (for an error event). */
export const parseClientMessage = (text: string): Either.Either<ClientMessage, string> => {
  if (Either.isLeft(decodeOp(text))) {
    return Either.left('expected a JSON object with "op": "subscribe", "unsubscribe" or "ping"')
  }
  return Either.mapLeft(decodeClientMessage(text), (error) => {
    const message = firstIssue(error)
    return message.startsWith('Expected "subscribe"') ? 'op must be "subscribe", "unsubscribe" or "ping"' : message
  })
}

const QueryParams = {
  ticker: Schema.Struct({
    exchange: ExchangeParam,
    symbol: SymbolParam,
    threshold: Schema.optional(Schema.compose(Schema.NumberFromString, ThresholdParam))
  }),
  trades: Schema.Struct({ exchange: ExchangeParam, symbol: SymbolParam }),
  orderbook: Schema.Struct({
    exchange: ExchangeParam,
    symbol: SymbolParam,
    depth: Schema.optional(Schema.compose(Schema.NumberFromString, Depth))
  }),
  ohlcv: Schema.Struct({ exchange: ExchangeParam, symbol: SymbolParam, interval: Schema.optional(IntervalParam) })
} as const

const queryParams = (channel: StreamChannel, raw: Readonly<Record<string, string>>) => {
  const request = <A extends Omit<SubscriptionRequest, "channel">>(
    decoded: Either.Either<A, ParseResult.ParseError>
  ): Either.Either<SubscriptionRequest, ParseResult.ParseError> =>
    Either.map(decoded, (params): SubscriptionRequest => ({ ...params, channel }))
  switch (channel) {
    case "ticker":
      return request(Schema.decodeUnknownEither(QueryParams.ticker)(raw))
    case "trades":
      return request(Schema.decodeUnknownEither(QueryParams.trades)(raw))
    case "orderbook":
      return request(Schema.decodeUnknownEither(QueryParams.orderbook)(raw))
    case "ohlcv":
      return request(Schema.decodeUnknownEither(QueryParams.ohlcv)(raw))
  }
}

/** The subscription a stream route's query string asks for; bad or missing parameters give a 400. */
export const parseQuery = (
  channel: StreamChannel,
  searchParams: URLSearchParams
): Either.Either<SubscriptionRequest, InvalidParameter> =>
  Either.mapLeft(queryParams(channel, Object.fromEntries(searchParams)), (error) => {
    const issue = ParseResult.ArrayFormatter.formatErrorSync(error)[0]
    const parameter = issue?.path[0] === undefined ? undefined : String(issue.path[0])
    const message =
      issue === undefined || parameter === undefined
        ? "Invalid query parameters"
        : issue.message === "is missing"
          ? `Missing required query parameter "${parameter}"`
          : `Invalid query parameter "${parameter}": ${issue.message}`
    return new InvalidParameter(parameter === undefined ? { message } : { message, parameter })
  })
