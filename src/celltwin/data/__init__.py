"""celltwin.data"""
