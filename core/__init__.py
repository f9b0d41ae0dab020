"""The ground floor: the domain vocabulary every other package speaks; it imports none of them."""
