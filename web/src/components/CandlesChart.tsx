import {
  CandlestickSeries,
  type CandlestickData,
  ColorType,
  createChart,
  type HistogramData,
  HistogramSeries,
  type IChartApi,
  type ISeriesApi,
  type LogicalRange,
  type UTCTimestamp
} from "lightweight-charts"
import { useEffect, useRef } from "react"
import { chartTime } from "../lib/candles.js"
import { priceDecimals } from "../lib/format.js"
import type { Candle } from "../lib/types.js"

const UP = "#26a69a"
const DOWN = "#ef5350"
const VISIBLE_BARS = 120

const toBar = (c: Candle): CandlestickData<UTCTimestamp> => ({
  time: chartTime(c) as UTCTimestamp,
  open: c.open,
  high: c.high,
  low: c.low,
  close: c.close
})

const toVolume = (c: Candle): HistogramData<UTCTimestamp> => ({
  time: chartTime(c) as UTCTimestamp,
  value: c.volume,
  color: c.close >= c.open ? "rgba(38, 166, 154, 0.45)" : "rgba(239, 83, 80, 0.45)"
})

interface Drawn {
  readonly view: string
  readonly first: number
  readonly length: number
}

/**
 * Candles with volume bars (lightweight-charts). History is drawn with setData; a live update of the open candle,
 * or the next candle, with update(). Scrolling near the left edge asks for older candles.
 */
export const CandlesChart = (props: {
  /** Identifies what is drawn (exchange, symbol, interval): a change redraws and fits the chart. */
  readonly view: string
  readonly candles: ReadonlyArray<Candle>
  readonly tick: number | null
  readonly loading: boolean
  readonly onNeedOlder: () => void
}) => {
  const container = useRef<HTMLDivElement>(null)
  const chart = useRef<IChartApi | null>(null)
  const candles = useRef<ISeriesApi<"Candlestick"> | null>(null)
  const volume = useRef<ISeriesApi<"Histogram"> | null>(null)
  const drawn = useRef<Drawn | null>(null)
  const needOlder = useRef(props.onNeedOlder)
  needOlder.current = props.onNeedOlder

  useEffect(() => {
    const element = container.current
    if (element === null) return
    const api = createChart(element, {
      autoSize: true,
      layout: {
        background: { type: ColorType.Solid, color: "#0f131a" },
        textColor: "#9aa4b2",
        fontSize: 11,
        // the logo injects an inline <style>, which the server's CSP refuses; the page credits TradingView instead
        attributionLogo: false
      },
      grid: { vertLines: { color: "#1b212c" }, horzLines: { color: "#1b212c" } },
      rightPriceScale: { borderColor: "#262d3a" },
      timeScale: { borderColor: "#262d3a", timeVisible: true, secondsVisible: false, rightOffset: 4 },
      crosshair: { mode: 0 }
    })
    const candleSeries = api.addSeries(CandlestickSeries, {
      upColor: UP,
      downColor: DOWN,
      borderVisible: false,
      wickUpColor: UP,
      wickDownColor: DOWN
    })
    const volumeSeries = api.addSeries(HistogramSeries, {
      priceFormat: { type: "volume" },
      priceScaleId: "",
      lastValueVisible: false,
      priceLineVisible: false
    })
    volumeSeries.priceScale().applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } })
    candleSeries.priceScale().applyOptions({ scaleMargins: { top: 0.08, bottom: 0.25 } })
    const onRange = (range: LogicalRange | null) => {
      if (range !== null && range.from < 10) needOlder.current()
    }
    api.timeScale().subscribeVisibleLogicalRangeChange(onRange)
    chart.current = api
    candles.current = candleSeries
    volume.current = volumeSeries
    return () => {
      api.timeScale().unsubscribeVisibleLogicalRangeChange(onRange)
      api.remove()
      chart.current = null
      candles.current = null
      volume.current = null
      drawn.current = null
    }
  }, [])

  useEffect(() => {
    const last = props.candles[props.candles.length - 1]
    const decimals = priceDecimals(last?.close ?? 1, props.tick)
    candles.current?.applyOptions({
      priceFormat: { type: "price", precision: decimals, minMove: props.tick ?? 10 ** -decimals }
    })
  }, [props.tick, props.candles])

  useEffect(() => {
    const series = candles.current
    const bars = volume.current
    const api = chart.current
    if (series === null || bars === null || api === null) return
    const list = props.candles
    const before = drawn.current
    const first = list[0]?.timestamp ?? 0
    const appendOnly =
      before !== null && before.view === props.view && before.first === first && list.length >= before.length
    if (appendOnly && before.length > 0) {
      // the open candle moved and perhaps the next ones started: update from the last drawn one on
      for (let i = before.length - 1; i < list.length; i++) {
        const c = list[i] as Candle
        series.update(toBar(c))
        bars.update(toVolume(c))
      }
    } else {
      const range = api.timeScale().getVisibleLogicalRange()
      series.setData(list.map(toBar))
      bars.setData(list.map(toVolume))
      const fresh = before === null || before.view !== props.view || before.length < VISIBLE_BARS / 2
      if (fresh) {
        // the latest bars, not all of them: a fitted chart would sit at the left edge and page in history at once
        api.timeScale().setVisibleLogicalRange({ from: list.length - VISIBLE_BARS, to: list.length + 4 })
      } else if (range !== null && first < before.first) {
        // older candles went in front: keep looking at the same ones
        const added = list.findIndex((c) => c.timestamp === before.first)
        if (added > 0) api.timeScale().setVisibleLogicalRange({ from: range.from + added, to: range.to + added })
      }
    }
    drawn.current = { view: props.view, first, length: list.length }
  }, [props.candles, props.view])

  const last = props.candles[props.candles.length - 1]
  return (
    <section className="panel chart-panel" aria-label="Candlestick chart">
      <div
        className="chart"
        ref={container}
        data-testid="candles-chart"
        data-candles={props.candles.length}
        data-last-time={last?.timestamp ?? ""}
        data-last-close={last?.close ?? ""}
      />
      {props.loading && <div className="chart-loading">loading…</div>}
    </section>
  )
}
