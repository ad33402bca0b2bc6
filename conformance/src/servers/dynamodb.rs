//! A disposable DynamoDB Local (to be written).
