"""tradebot runtime: one exchange's execution loop per pod."""

__version__ = "0.1.0"
