"""`ctguard explain`: what each conntrack state, flag, setting and counter means."""
