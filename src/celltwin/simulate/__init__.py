"""celltwin.simulate"""
