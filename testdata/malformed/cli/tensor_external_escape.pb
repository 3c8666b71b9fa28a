BXj
location../../../go.modp