"""celltwin.pl"""
