"""`make bench`: Bookify's performance figures from one run of the whole stack (docs/performance.md)."""
