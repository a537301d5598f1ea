"""The HTTP layer: parse, call one service method, render."""
