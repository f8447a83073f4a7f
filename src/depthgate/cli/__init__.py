"""Console entry points: arguments, the environment and rendering; nothing below reads them."""
