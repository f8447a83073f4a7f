"""The GitHub adapter: PyGithub client for one pull request, and the Actions runtime."""
