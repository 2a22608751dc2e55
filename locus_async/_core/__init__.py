"""The shared pure core of both providers: our Request/Response types and URL checks,
the status-to-error table, the cattrs converter, the retry classification and arithmetic,
argument and time-zone checks. No await, no clock reads, no network."""
