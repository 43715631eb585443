raise ImportError("bluepy is hidden for this test")  # a machine without bluepy
