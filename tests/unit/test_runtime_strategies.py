"""Built-in strategies on synthetic price series, the registry and the plugin loader."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import pytest

from tradebot_contracts.runtime_config import PythonStrategyRef, StrategyConfig
from tradebot_contracts.strategies import (
    DcaParams,
    GridParams,
    RsiReversionParams,
    SmaCrossoverParams,
    StrategyParametersError,
)
from tradebot_runtime.domain import (
    Action,
    Bar,
    CancelIntent,
    Fill,
    OpenOrder,
    OrderIntent,
    OrderType,
    Position,
    Side,
)
from tradebot_runtime.strategies import (
    BaseStrategy,
    Dca,
    Grid,
    RsiReversion,
    SmaCrossover,
    Strategy,
    StrategyContext,
    StrategyLoadError,
    TagStats,
    create_strategy,
    load_strategy_class,
)
from tradebot_runtime.strategies.grid import level_tag, parse_level_tag
from tradebot_runtime.strategies.indicators import RelativeStrengthIndex, SimpleMovingAverage

D = Decimal
SYMBOL = "BTC/USDT"
MINUTE = 60_000
T0 = 1_700_000_040_000


def bars(closes: Sequence[str | int], timeframe: str = "1m", step: int = MINUTE) -> list[Bar]:
    out = []
    for i, close in enumerate(closes):
        c = D(close)
        out.append(Bar(SYMBOL, timeframe, T0 + i * step, c, c, c, c, D(1)))
    return out


def ctx(
    position: Decimal | int = 0,
    open_orders: Sequence[OpenOrder] = (),
    balances: dict[str, Decimal] | None = None,
    now_ms: int = T0,
    tag_stats: dict[str, TagStats] | None = None,
    last_price: Decimal | None = None,
) -> StrategyContext:
    return StrategyContext(
        symbol=SYMBOL,
        now_ms=now_ms,
        position=Position(SYMBOL, amount=D(position)),
        open_orders=tuple(open_orders),
        balances=balances or {},
        last_price=last_price,
        tag_stats=tag_stats or {},
    )


def orders_only(actions: list[Action]) -> list[OrderIntent]:
    return [a for a in actions if isinstance(a, OrderIntent)]


# --- indicators ---------------------------------------------------------------------------


def test_sma_is_exact_mean_of_window() -> None:
    sma = SimpleMovingAverage(3)
    assert sma.update(D(1)) is None and sma.update(D(2)) is None
    assert sma.update(D(3)) == D(2)
    assert sma.update(D(10)) == D(5)


def test_rsi_matches_wilders_reference_series() -> None:
    # StockCharts' RSI(14) worked example; their table rounds intermediate averages to two
    # decimals, hence the tolerance
    closes = [
        "44.34",
        "44.09",
        "44.15",
        "43.61",
        "44.33",
        "44.83",
        "45.10",
        "45.42",
        "45.84",
        "46.08",
        "45.89",
        "46.03",
        "45.61",
        "46.28",
        "46.28",
        "46.00",
        "46.03",
        "46.41",
        "46.22",
        "45.64",
    ]
    expected = ["70.53", "66.32", "66.55", "69.41", "66.36", "57.97"]
    rsi = RelativeStrengthIndex(14)
    values = [v for v in (rsi.update(D(c)) for c in closes) if v is not None]
    assert len(values) == len(expected)
    for value, reference in zip(values, expected, strict=True):
        assert abs(value - D(reference)) < D("0.1")


def test_rsi_extremes() -> None:
    rising, flat = RelativeStrengthIndex(2), RelativeStrengthIndex(2)
    for c in (1, 2, 3):
        rising.update(D(c))
        flat.update(D(5))
    assert rising.value == 100 and flat.value == 50


# --- sma-crossover ------------------------------------------------------------------------

# fast(2) vs slow(4): below until bar 6 (golden cross), above until bar 10 (death cross)
SMA_SERIES = [10, 9, 8, 7, 6, 7, 9, 12, 14, 12, 9, 6, 4]


def sma_strategy() -> SmaCrossover:
    params = SmaCrossoverParams(fast_period=2, slow_period=4, order_size=D(90))
    return SmaCrossover(params, [SYMBOL])


def test_sma_buys_on_golden_cross_and_sells_on_death_cross() -> None:
    strategy = sma_strategy()
    position = D(0)
    emitted: list[tuple[int, OrderIntent]] = []
    for i, bar in enumerate(bars(SMA_SERIES)):
        for intent in orders_only(strategy.on_bar(bar, ctx(position))):
            emitted.append((i, intent))
            position += intent.signed_amount()  # filled at once
    assert [(i, o.side) for i, o in emitted] == [(6, Side.BUY), (10, Side.SELL)]
    buy, sell = emitted[0][1], emitted[1][1]
    assert buy.type is OrderType.MARKET and buy.amount == D(10)  # 90 quote / close 9
    assert sell.amount == D(10) and sell.reduce_only
    assert position == 0


def test_sma_does_not_sell_when_flat_or_buy_when_long() -> None:
    strategy = sma_strategy()
    for bar in bars(SMA_SERIES[:6]):
        strategy.on_bar(bar, ctx(0))
    assert strategy.on_bar(bars(SMA_SERIES)[6], ctx(position=5)) == []  # already long
    for bar in bars(SMA_SERIES)[7:10]:
        strategy.on_bar(bar, ctx(0))
    assert strategy.on_bar(bars(SMA_SERIES)[10], ctx(position=0)) == []  # nothing to sell


def test_sma_waits_while_its_order_is_in_flight() -> None:
    strategy = sma_strategy()
    working = OpenOrder("c1", SYMBOL, Side.BUY, OrderType.MARKET, D(1), D(0), tag="sma:entry")
    for bar in bars(SMA_SERIES[:6]):
        strategy.on_bar(bar, ctx(0))
    assert strategy.on_bar(bars(SMA_SERIES)[6], ctx(0, open_orders=[working])) == []


def test_sma_warmup_rebuilds_state_without_trading() -> None:
    strategy = sma_strategy()
    history = bars(SMA_SERIES)
    strategy.warmup(history[:7])  # includes the golden cross
    assert strategy.on_bar(history[7], ctx(0)) == []  # an old cross is not acted upon
    actions = orders_only(
        [a for bar in history[8:11] for a in strategy.on_bar(bar, ctx(position=D(10)))]
    )
    assert [a.side for a in actions] == [Side.SELL]


def test_sma_is_deterministic() -> None:
    def run() -> list[Action]:
        strategy = sma_strategy()
        return [a for bar in bars(SMA_SERIES) for a in strategy.on_bar(bar, ctx(0))]

    assert run() == run()


# --- rsi-reversion ------------------------------------------------------------------------


def test_rsi_buys_oversold_and_sells_overbought() -> None:
    params = RsiReversionParams(period=3, oversold=D(30), overbought=D(70), order_size=D(97))
    strategy = RsiReversion(params, [SYMBOL])
    # RSI(3): 0 at bar 3 (three losses), then 33.3, 55.6, 70.4 as the price recovers
    series = [100, 99, 98, 97, 98, 99, 100]
    position = D(0)
    emitted: list[tuple[int, OrderIntent]] = []
    for i, bar in enumerate(bars(series)):
        for intent in orders_only(strategy.on_bar(bar, ctx(position))):
            emitted.append((i, intent))
            position += intent.signed_amount()
    assert [(i, o.side) for i, o in emitted] == [(3, Side.BUY), (6, Side.SELL)]
    assert emitted[0][1].amount == D(1)  # 97 / 97
    assert emitted[1][1].reduce_only and position == 0
    rsi = strategy.rsi(SYMBOL)
    assert rsi is not None and D("70.3") < rsi < D("70.4")


def test_rsi_does_not_pyramid_while_long() -> None:
    params = RsiReversionParams(period=2, order_size=D(10))
    strategy = RsiReversion(params, [SYMBOL])
    actions = [a for bar in bars([10, 9, 8, 7, 6, 5]) for a in strategy.on_bar(bar, ctx(1))]
    assert actions == []


# --- grid ---------------------------------------------------------------------------------


def grid_strategy() -> Grid:
    params = GridParams(lower=D(100), upper=D(110), levels=11, order_size=D(100))
    return Grid(params, [SYMBOL])


def as_open(intent: OrderIntent, cid: str) -> OpenOrder:
    return OpenOrder(
        cid, intent.symbol, intent.side, intent.type, intent.amount, D(0), intent.price, intent.tag
    )


def test_grid_places_buys_below_and_nothing_at_the_gap() -> None:
    grid = grid_strategy()
    assert grid.level_prices[0] == 100 and grid.level_prices[-1] == 110
    actions = orders_only(grid.on_bar(bars(["105.2"])[0], ctx(0, balances={"USDT": D(1000)})))
    assert [(a.side, a.price) for a in actions] == [
        (Side.BUY, D(p)) for p in (104, 103, 102, 101, 100)
    ]
    assert all(a.type is OrderType.LIMIT and a.amount * (a.price or 0) == 100 for a in actions)
    assert actions[0].tag == "grid:4:buy"


def test_grid_buys_limited_by_free_quote() -> None:
    grid = grid_strategy()
    actions = orders_only(grid.on_bar(bars(["105.2"])[0], ctx(0, balances={"USDT": D(250)})))
    assert [a.price for a in actions] == [D(104), D(103)]


def test_grid_replaces_levels_as_orders_fill() -> None:
    grid = grid_strategy()
    placed = orders_only(grid.on_bar(bars(["105.2"])[0], ctx(0)))
    book = {a.tag: as_open(a, f"c{i}") for i, a in enumerate(placed)}

    # the buy at 104 fills: take profit one level up, nothing else changes
    bought = book.pop("grid:4:buy")
    position = bought.amount
    actions = grid.on_bar(bars(["104.1"])[0], ctx(position, open_orders=list(book.values())))
    assert [(a.side, a.price, a.tag) for a in orders_only(actions)] == [
        (Side.SELL, D(105), "grid:5:sell")
    ]
    sell = orders_only(actions)[0]
    assert sell.amount == D(100) / D(105)
    book[sell.tag] = as_open(sell, "s1")

    # the sell at 105 fills: the buy at 104 is re-armed
    book.pop("grid:5:sell")
    position -= sell.amount
    actions = grid.on_bar(bars(["105"])[0], ctx(position, open_orders=list(book.values())))
    assert [(a.side, a.price) for a in orders_only(actions)] == [(Side.BUY, D(104))]


def test_grid_sells_only_inventory_nearest_first() -> None:
    grid = grid_strategy()
    inventory = D(100) / D(106) + D(100) / D(107) + D("0.0001")
    actions = orders_only(grid.on_bar(bars(["105"])[0], ctx(inventory, balances={"USDT": D(0)})))
    assert [(a.side, a.price) for a in actions] == [(Side.SELL, D(106)), (Side.SELL, D(107))]


def test_grid_on_fill_rearms_immediately() -> None:
    grid = grid_strategy()
    fill = Fill("t1", "c", SYMBOL, Side.BUY, D(104), D(100) / D(104), D(0), "USDT", T0)
    actions = orders_only(grid.on_fill(fill, ctx(fill.amount, balances={"USDT": D(0)})))
    assert [(a.side, a.price) for a in actions] == [(Side.SELL, D(105))]


def test_grid_cancels_stale_and_duplicate_orders_but_keeps_tick_rounded_ones() -> None:
    grid = grid_strategy()

    def order(cid: str, tag: str, price: str, side: Side = Side.BUY) -> OpenOrder:
        return OpenOrder(cid, SYMBOL, side, OrderType.LIMIT, D(1), D(0), D(price), tag)

    existing = [
        order("keep", "grid:4:buy", "104.004"),  # rounded to a tick: still level 4
        order("dup", "grid:4:buy", "104"),  # a second order on the same level
        order("far", "grid:3:buy", "98"),  # from an older parameter set
        order("gone", "grid:50:buy", "100"),  # no such level
        order("side", "grid:2:sell", "102", Side.BUY),  # tag and side disagree
        order("junk", "grid:x", "100"),
    ]
    actions = grid.on_bar(bars(["105"])[0], ctx(0, open_orders=existing, balances={"USDT": D(0)}))
    cancels = sorted(a.client_order_id for a in actions if isinstance(a, CancelIntent))
    assert cancels == ["dup", "far", "gone", "junk", "side"]


def test_grid_tags_round_trip() -> None:
    assert parse_level_tag(level_tag(7, Side.SELL)) == (7, Side.SELL)
    assert parse_level_tag("grid:-1:buy") is None
    assert parse_level_tag("sma:entry") is None


# --- dca ----------------------------------------------------------------------------------


def test_dca_buys_on_schedule_up_to_max_orders() -> None:
    params = DcaParams(interval="1h", amount=D(50), max_orders=3)
    strategy = Dca(params, [SYMBOL])
    quarter = 15 * MINUTE
    stats: TagStats | None = None
    buys: list[int] = []
    for i, bar in enumerate(bars(["25"] * 24, timeframe="15m", step=quarter)):
        now = bar.ts + quarter  # the candle just closed
        context = ctx(0, now_ms=now, tag_stats={"dca": stats} if stats else {})
        for intent in orders_only(strategy.on_bar(bar, context)):
            assert intent.side is Side.BUY and intent.amount == D(2) and intent.tag == "dca"
            buys.append(i)
            # the journal now holds one more dca order
            stats = TagStats(count=(stats.count if stats else 0) + 1, last_ts=now)
    assert buys == [0, 4, 8]


def test_dca_state_comes_from_the_journal_after_restart() -> None:
    params = DcaParams(interval="1h", amount=D(50), max_orders=3)
    fresh = Dca(params, [SYMBOL])
    bar = bars(["25"])[0]
    done = ctx(0, now_ms=T0 + 10 * 3_600_000, tag_stats={"dca": TagStats(3, T0)})
    assert fresh.on_bar(bar, done) == []
    recent = ctx(0, now_ms=T0 + 1_000, tag_stats={"dca": TagStats(1, T0)})
    assert fresh.on_bar(bar, recent) == []


def test_dca_without_max_orders_and_with_working_order() -> None:
    strategy = Dca(DcaParams(interval="30m", amount=D(10)), [SYMBOL])
    bar = bars(["10"])[0]
    many = ctx(0, now_ms=T0 + 3_600_000, tag_stats={"dca": TagStats(10_000, T0)})
    assert len(strategy.on_bar(bar, many)) == 1
    working = OpenOrder("c", SYMBOL, Side.BUY, OrderType.MARKET, D(1), D(0), tag="dca")
    assert strategy.on_bar(bar, ctx(0, open_orders=[working])) == []


# --- registry and plugins ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("strategy_type", "parameters", "cls"),
    [
        ("sma-crossover", {"fastPeriod": 5, "slowPeriod": 20, "orderSize": "100"}, SmaCrossover),
        ("rsi-reversion", {"orderSize": "100"}, RsiReversion),
        ("grid", {"lower": "1", "upper": "2", "levels": 5, "orderSize": "10"}, Grid),
        ("dca", {"interval": "1d", "amount": "25", "maxOrders": 10}, Dca),
    ],
)
def test_registry_builds_builtins(
    strategy_type: str, parameters: dict[str, object], cls: type
) -> None:
    config = StrategyConfig.model_validate(
        {"name": "s", "type": strategy_type, "timeframe": "1m", "parameters": parameters}
    )
    strategy = create_strategy(config, [SYMBOL])
    assert isinstance(strategy, cls) and isinstance(strategy, Strategy)


def test_registry_reports_the_bad_field() -> None:
    config = StrategyConfig.model_validate(
        {
            "name": "s",
            "type": "sma-crossover",
            "timeframe": "1m",
            "parameters": {"fastPeriod": 20, "slowPeriod": 5, "orderSize": "1"},
        }
    )
    with pytest.raises(StrategyParametersError) as info:
        create_strategy(config, [SYMBOL])
    assert info.value.field == "spec.parameters.slowPeriod"


PLUGIN = """
from tradebot_runtime.strategies import BaseStrategy

class Good(BaseStrategy):
    def on_bar(self, bar, ctx):
        return []

class Incomplete:
    def on_bar(self, bar, ctx):
        return []

class Exploding(BaseStrategy):
    def __init__(self, parameters, symbols):
        raise ValueError("threshold missing")

not_a_class = 42
"""


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    package = tmp_path / "myplugins"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "strat.py").write_text(textwrap.dedent(PLUGIN))
    (package / "broken.py").write_text("raise RuntimeError('boom at import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def python_config(module: str, parameters: dict[str, object] | None = None) -> StrategyConfig:
    return StrategyConfig(
        name="p",
        type="python",
        timeframe="5m",
        parameters=parameters or {},
        python=PythonStrategyRef(module=module, image="registry.local/plugins:1"),
    )


def test_plugin_is_loaded_and_receives_its_parameters(plugin_dir: Path) -> None:
    strategy = create_strategy(python_config("myplugins.strat:Good", {"x": 1}), [SYMBOL])
    assert isinstance(strategy, BaseStrategy)
    assert strategy.parameters == {"x": 1} and strategy.symbols == (SYMBOL,)


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("myplugins.strat:Incomplete", "missing warmup, on_tick, on_fill"),
        ("myplugins.strat:Nope", "has no attribute 'Nope'"),
        ("myplugins.strat:not_a_class", "not a class"),
        ("myplugins.missing:Good", "cannot import module 'myplugins.missing'"),
        ("myplugins.broken:Good", "raised RuntimeError: boom at import"),
        ("no-colon-here", "package.module:ClassName"),
    ],
)
def test_plugin_errors_are_clear(plugin_dir: Path, reference: str, message: str) -> None:
    with pytest.raises(StrategyLoadError, match=message):
        load_strategy_class(reference)


def test_plugin_constructor_failure_is_wrapped(plugin_dir: Path) -> None:
    with pytest.raises(StrategyLoadError, match="threshold missing"):
        create_strategy(python_config("myplugins.strat:Exploding"), [SYMBOL])
