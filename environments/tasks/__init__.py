"""Task suites: a goal, a start state and a success check on the environment's state."""
