"""The pure core: diff, classification, packing, findings, placement, sanitizing, rendering,
the review pipeline and the ports the adapters implement. No network, environment, file or clock."""
