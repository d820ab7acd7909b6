needAcct()
return 1
