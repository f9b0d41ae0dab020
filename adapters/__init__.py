"""Department adapters: one per departmental system, behind the Adapter interface.

Only adapters.registry imports the specific departments; importing this package does not.
"""
