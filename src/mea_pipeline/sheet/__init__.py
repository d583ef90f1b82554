"""The lab's Google-Sheet metadata (gsheet_metadata): fetch once per batch, snapshot, match a recording."""
