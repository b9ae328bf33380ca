print("kensho")
