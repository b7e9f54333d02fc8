"""Inputs stage: sample specs -> what each sample's files hold (`SampleInputs`)."""
