"""The lab's Google-Sheet metadata (step 8): fetch once per batch, snapshot, match a recording."""
