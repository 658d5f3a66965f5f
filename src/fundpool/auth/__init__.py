"""Who is calling: API keys, users, sessions, and what their roles allow."""
