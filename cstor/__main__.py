from cstor.cli import main

main()
