"""celltwin.pp"""
