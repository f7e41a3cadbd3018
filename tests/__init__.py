"""tenantstream's tests."""

# Test modules fix their simulated start times when pytest imports them, and a test may run as long after
# that as the suite lasts (about half an hour): starting at least this far ahead keeps their times ahead of
# the records' append times, never behind them by more than the jobs' 15-minute bound (submit.simulate).
SUITE_LEAD_MS = 40 * 60_000
