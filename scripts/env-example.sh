#!/usr/bin/env bash
# Rebuilds .env.example from the core section and each provider's env.example.
cd "$(dirname "$0")/.."
{
  cat <<'HEAD'
# gallery-bridge: every environment variable it reads. Copy to .env (git-ignored) or export them.
# Secrets (tokens, cookies, client secrets) belong in your shell or a 0600 file, never in a repository.

# --- Core ---
# Where credentials (one 0600 file per provider account) and shared counters live
GALLERY_BRIDGE_HOME=~/.config/gallery-bridge
# Multiplies every retry back-off delay (tests set 0.01); 1 = as documented
GALLERY_BRIDGE_BACKOFF_SCALE=1
HEAD
  for f in providers/*/env.example; do echo; cat "$f"; done
} > .env.example
