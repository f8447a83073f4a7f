"""The gateway adapter: httpx client for OpenAI-compatible gateways, their profiles, smoke runs."""
