q/a.b
