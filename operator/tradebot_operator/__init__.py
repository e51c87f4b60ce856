"""tradebot operator: reconciles TradingBot, Strategy and ExchangeAccount resources."""

__version__ = "0.1.0"
