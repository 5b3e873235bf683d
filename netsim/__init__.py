"""cloudarcade.netsim"""
