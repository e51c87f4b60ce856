"""Render engine objects as Binance spot JSON (REST bodies and stream events).

Key sets and JSON types follow the captured payloads in the ccxt fixtures: amounts are
strings with eight decimals, ids and times are integers, flags are booleans.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .config import SymbolSpec
from .decimals import ZERO, fmt8
from .engine import PERCENT_DOWN, PERCENT_UP, AccountState
from .market import Level, Market
from .marketdata import Rolling24h, bucket_end
from .models import BUY, Candle, ExecutionReport, Fill, Order, PublicTrade

JSON = dict[str, Any]
STP_MODES = ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"]
ORDER_TYPES = ["LIMIT", "LIMIT_MAKER", "MARKET"]


def symbol_info(spec: SymbolSpec) -> JSON:
    return {
        "symbol": spec.symbol,
        "status": "TRADING",
        "baseAsset": spec.base,
        "baseAssetPrecision": 8,
        "quoteAsset": spec.quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": list(ORDER_TYPES),
        "icebergAllowed": False,
        "ocoAllowed": False,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": False,
        "cancelReplaceAllowed": False,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": fmt8(spec.min_price),
                "maxPrice": fmt8(spec.max_price),
                "tickSize": fmt8(spec.tick_size),
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": fmt8(spec.min_qty),
                "maxQty": fmt8(spec.max_qty),
                "stepSize": fmt8(spec.step_size),
            },
            {"filterType": "ICEBERG_PARTS", "limit": 10},
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": fmt8(ZERO),
                "maxQty": fmt8(spec.market_max_qty),
                "stepSize": fmt8(ZERO),
            },
            {
                "filterType": "TRAILING_DELTA",
                "minTrailingAboveDelta": 10,
                "maxTrailingAboveDelta": 2000,
                "minTrailingBelowDelta": 10,
                "maxTrailingBelowDelta": 2000,
            },
            {
                "filterType": "PERCENT_PRICE_BY_SIDE",
                "bidMultiplierUp": str(PERCENT_UP),
                "bidMultiplierDown": str(PERCENT_DOWN),
                "askMultiplierUp": str(PERCENT_UP),
                "askMultiplierDown": str(PERCENT_DOWN),
                "avgPriceMins": 5,
            },
            {
                "filterType": "NOTIONAL",
                "minNotional": fmt8(spec.min_notional),
                "applyMinToMarket": True,
                "maxNotional": fmt8(spec.max_notional),
                "applyMaxToMarket": False,
                "avgPriceMins": 5,
            },
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": spec.max_num_orders},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": 5},
        ],
        "permissions": ["SPOT"],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": list(STP_MODES),
    }


def account(state: AccountState, now_ms: int, omit_zero: bool) -> JSON:
    maker, taker = state.spec.maker_fee, state.spec.taker_fee
    balances = [
        {"asset": asset, "free": fmt8(bal.free), "locked": fmt8(bal.locked)}
        for asset, bal in sorted(state.balances.items())
        if not omit_zero or bal.free > ZERO or bal.locked > ZERO
    ]
    return {
        "makerCommission": int(maker * 10_000),
        "takerCommission": int(taker * 10_000),
        "buyerCommission": 0,
        "sellerCommission": 0,
        "commissionRates": {
            "maker": fmt8(maker),
            "taker": fmt8(taker),
            "buyer": fmt8(ZERO),
            "seller": fmt8(ZERO),
        },
        "canTrade": True,
        "canWithdraw": True,
        "canDeposit": True,
        "brokered": False,
        "requireSelfTradePrevention": False,
        "preventSor": False,
        "updateTime": state.update_time or now_ms,
        "accountType": "SPOT",
        "balances": balances,
        "permissions": ["SPOT"],
        "uid": state.uid,
    }


def _order_core(o: Order) -> JSON:
    return {
        "price": fmt8(o.price),
        "origQty": fmt8(o.orig_qty),
        "executedQty": fmt8(o.executed_qty),
        "cummulativeQuoteQty": fmt8(o.cum_quote),
        "status": o.status,
        "timeInForce": o.time_in_force,
        "type": o.type,
        "side": o.side,
    }


def order_ack(o: Order, transact_time: int) -> JSON:
    return {
        "symbol": o.symbol,
        "orderId": o.order_id,
        "orderListId": -1,
        "clientOrderId": o.client_order_id,
        "transactTime": transact_time,
    }


def order_result(o: Order, transact_time: int) -> JSON:
    body = order_ack(o, transact_time)
    body.update(_order_core(o))
    body["origQuoteOrderQty"] = fmt8(o.orig_quote_qty)
    body["workingTime"] = o.time
    body["selfTradePreventionMode"] = o.stp_mode
    return body


def order_full(o: Order, transact_time: int, fills: list[Fill]) -> JSON:
    body = order_result(o, transact_time)
    body["fills"] = [
        {
            "price": fmt8(f.price),
            "qty": fmt8(f.qty),
            "commission": fmt8(f.commission),
            "commissionAsset": f.commission_asset,
            "tradeId": f.trade_id,
        }
        for f in fills
    ]
    return body


def order_query(o: Order) -> JSON:
    body: JSON = {
        "symbol": o.symbol,
        "orderId": o.order_id,
        "orderListId": -1,
        "clientOrderId": o.client_order_id,
    }
    body.update(_order_core(o))
    body.update(
        {
            "stopPrice": fmt8(ZERO),
            "icebergQty": fmt8(ZERO),
            "time": o.time,
            "updateTime": o.update_time,
            "isWorking": True,
            "workingTime": o.time,
            "origQuoteOrderQty": fmt8(o.orig_quote_qty),
            "selfTradePreventionMode": o.stp_mode,
        }
    )
    return body


def order_canceled(o: Order, cancel_client_id: str, transact_time: int) -> JSON:
    body: JSON = {
        "symbol": o.symbol,
        "origClientOrderId": o.client_order_id,
        "orderId": o.order_id,
        "orderListId": -1,
        "clientOrderId": cancel_client_id,
        "transactTime": transact_time,
    }
    body.update(_order_core(o))
    body["origQuoteOrderQty"] = fmt8(o.orig_quote_qty)
    body["selfTradePreventionMode"] = o.stp_mode
    return body


def my_trade(f: Fill) -> JSON:
    return {
        "symbol": f.symbol,
        "id": f.trade_id,
        "orderId": f.order_id,
        "orderListId": -1,
        "price": fmt8(f.price),
        "qty": fmt8(f.qty),
        "quoteQty": fmt8(f.quote_qty),
        "commission": fmt8(f.commission),
        "commissionAsset": f.commission_asset,
        "time": f.time,
        "isBuyer": f.side == BUY,
        "isMaker": f.is_maker,
        "isBestMatch": True,
    }


def _best(levels: list[Level]) -> Level | None:
    return next((lv for lv in levels if lv.qty > ZERO), None)


def book_ticker(m: Market) -> JSON:
    bids, asks = m.book()
    bid, ask = _best(bids), _best(asks)
    return {
        "symbol": m.spec.symbol,
        "bidPrice": fmt8(bid.price if bid else ZERO),
        "bidQty": fmt8(bid.qty if bid else ZERO),
        "askPrice": fmt8(ask.price if ask else ZERO),
        "askQty": fmt8(ask.qty if ask else ZERO),
    }


def ticker_24h(m: Market, stats: Rolling24h, now_ms: int) -> JSON:
    bt = book_ticker(m)
    last = m.last_price
    change = last - stats.open_price
    pct = (change / stats.open_price * 100) if stats.open_price > ZERO else ZERO
    last_qty = m.trades[-1].qty if m.trades else ZERO
    return {
        "symbol": m.spec.symbol,
        "priceChange": fmt8(change),
        "priceChangePercent": f"{pct.quantize(Decimal('0.001')):f}",
        "weightedAvgPrice": fmt8(stats.weighted_avg),
        "prevClosePrice": fmt8(stats.prev_close),
        "lastPrice": fmt8(last),
        "lastQty": fmt8(last_qty),
        "bidPrice": bt["bidPrice"],
        "bidQty": bt["bidQty"],
        "askPrice": bt["askPrice"],
        "askQty": bt["askQty"],
        "openPrice": fmt8(stats.open_price),
        "highPrice": fmt8(stats.high),
        "lowPrice": fmt8(stats.low),
        "volume": fmt8(stats.volume),
        "quoteVolume": fmt8(stats.quote_volume),
        "openTime": now_ms - 86_400_000,
        "closeTime": now_ms,
        "firstId": stats.first_id,
        "lastId": stats.last_id,
        "count": stats.count,
    }


def depth(m: Market, limit: int) -> JSON:
    bids, asks = m.book()
    return {
        "lastUpdateId": m.update_id,
        "bids": [[fmt8(lv.price), fmt8(lv.qty)] for lv in bids if lv.qty > ZERO][:limit],
        "asks": [[fmt8(lv.price), fmt8(lv.qty)] for lv in asks if lv.qty > ZERO][:limit],
    }


def kline_row(c: Candle, interval: str) -> list[Any]:
    return [
        c.open_time,
        fmt8(c.open),
        fmt8(c.high),
        fmt8(c.low),
        fmt8(c.close),
        fmt8(c.volume),
        bucket_end(c.open_time, interval),
        fmt8(c.quote_volume),
        c.trades,
        fmt8(c.taker_buy_volume),
        fmt8(c.taker_buy_quote),
        "0",
    ]


def agg_trade(t: PublicTrade) -> JSON:
    # One fill per aggregate: the simulator never splits a taker across makers.
    return {
        "a": t.trade_id,
        "p": fmt8(t.price),
        "q": fmt8(t.qty),
        "f": t.trade_id,
        "l": t.trade_id,
        "T": t.time,
        "m": t.is_buyer_maker,
        "M": True,
    }


def public_trade(t: PublicTrade) -> JSON:
    return {
        "id": t.trade_id,
        "price": fmt8(t.price),
        "qty": fmt8(t.qty),
        "quoteQty": fmt8(t.price * t.qty),
        "time": t.time,
        "isBuyerMaker": t.is_buyer_maker,
        "isBestMatch": True,
    }


# --- stream events ---


def trade_event(t: PublicTrade, event_time: int) -> JSON:
    return {
        "e": "trade",
        "E": event_time,
        "s": t.symbol,
        "t": t.trade_id,
        "p": fmt8(t.price),
        "q": fmt8(t.qty),
        "T": t.time,
        "m": t.is_buyer_maker,
        "M": True,
    }


def agg_trade_event(t: PublicTrade, event_time: int) -> JSON:
    body = {"e": "aggTrade", "E": event_time, "s": t.symbol}
    body.update(agg_trade(t))
    return body


def kline_event(symbol: str, c: Candle, interval: str, now_ms: int) -> JSON:
    close_time = bucket_end(c.open_time, interval)
    return {
        "e": "kline",
        "E": now_ms,
        "s": symbol,
        "k": {
            "t": c.open_time,
            "T": close_time,
            "s": symbol,
            "i": interval,
            "f": c.first_trade_id,
            "L": c.last_trade_id,
            "o": fmt8(c.open),
            "c": fmt8(c.close),
            "h": fmt8(c.high),
            "l": fmt8(c.low),
            "v": fmt8(c.volume),
            "n": c.trades,
            "x": now_ms > close_time,
            "q": fmt8(c.quote_volume),
            "V": fmt8(c.taker_buy_volume),
            "Q": fmt8(c.taker_buy_quote),
            "B": "0",
        },
    }


def ticker_event(m: Market, stats: Rolling24h, now_ms: int) -> JSON:
    t = ticker_24h(m, stats, now_ms)
    return {
        "e": "24hrTicker",
        "E": now_ms,
        "s": t["symbol"],
        "p": t["priceChange"],
        "P": t["priceChangePercent"],
        "w": t["weightedAvgPrice"],
        "x": t["prevClosePrice"],
        "c": t["lastPrice"],
        "Q": t["lastQty"],
        "b": t["bidPrice"],
        "B": t["bidQty"],
        "a": t["askPrice"],
        "A": t["askQty"],
        "o": t["openPrice"],
        "h": t["highPrice"],
        "l": t["lowPrice"],
        "v": t["volume"],
        "q": t["quoteVolume"],
        "O": t["openTime"],
        "C": t["closeTime"],
        "F": t["firstId"],
        "L": t["lastId"],
        "n": t["count"],
    }


def mini_ticker_event(m: Market, stats: Rolling24h, now_ms: int) -> JSON:
    return {
        "e": "24hrMiniTicker",
        "E": now_ms,
        "s": m.spec.symbol,
        "c": fmt8(m.last_price),
        "o": fmt8(stats.open_price),
        "h": fmt8(stats.high),
        "l": fmt8(stats.low),
        "v": fmt8(stats.volume),
        "q": fmt8(stats.quote_volume),
    }


def book_ticker_event(m: Market) -> JSON:
    bt = book_ticker(m)
    return {
        "u": m.update_id,
        "s": bt["symbol"],
        "b": bt["bidPrice"],
        "B": bt["bidQty"],
        "a": bt["askPrice"],
        "A": bt["askQty"],
    }


def depth_update_event(
    symbol: str,
    first_id: int,
    last_id: int,
    bids: list[list[str]],
    asks: list[list[str]],
    now_ms: int,
) -> JSON:
    return {
        "e": "depthUpdate",
        "E": now_ms,
        "s": symbol,
        "U": first_id,
        "u": last_id,
        "b": bids,
        "a": asks,
    }


def execution_report(r: ExecutionReport) -> JSON:
    o, f = r.order, r.fill
    return {
        "e": "executionReport",
        "E": r.event_time,
        "s": o.symbol,
        "c": o.client_order_id,
        "S": o.side,
        "o": o.type,
        "f": o.time_in_force,
        "q": fmt8(o.orig_qty),
        "p": fmt8(o.price),
        "P": fmt8(ZERO),
        "F": fmt8(ZERO),
        "g": -1,
        "C": o.client_order_id if r.execution_type == "CANCELED" else "",
        "x": r.execution_type,
        "X": o.status,
        "r": "NONE",
        "i": o.order_id,
        "l": fmt8(f.qty if f else ZERO),
        "z": fmt8(o.executed_qty),
        "L": fmt8(f.price if f else ZERO),
        "n": fmt8(f.commission if f else ZERO),
        "N": f.commission_asset if f else None,
        "T": r.event_time,
        "t": f.trade_id if f else -1,
        "I": 0,
        "w": o.is_open,
        "m": f.is_maker if f else False,
        "M": False,
        "O": o.time,
        "Z": fmt8(o.cum_quote),
        "Y": fmt8(f.quote_qty if f else ZERO),
        "Q": fmt8(o.orig_quote_qty),
        "W": o.time,
        "V": o.stp_mode,
    }


def account_position(event_time: int, balances: tuple[tuple[str, Decimal, Decimal], ...]) -> JSON:
    return {
        "e": "outboundAccountPosition",
        "E": event_time,
        "u": event_time,
        "B": [{"a": a, "f": fmt8(free), "l": fmt8(locked)} for a, free, locked in balances],
    }
