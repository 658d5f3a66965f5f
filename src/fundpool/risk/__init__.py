"""Risk control: rules, policy and screening that decide whether a payment may go."""
